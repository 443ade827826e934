"""The 2-D toy of METHOD.md: the DM loss alone moves a uniform point cloud onto a reference.

A small flow-matching MLP (the teacher) learns two moons; learnable points start uniform on a
square; a second MLP (the student) tracks the points' own distribution online, and every k
steps the points take a DM-loss step. This checks the sign, scale and CFG plumbing of dm_loss
end to end, which the unit tests cannot.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_toy_dm.py
     /usr/bin/python3 tests/test_toy_dm.py 0 1 2 3 4    # several seeds, prints the distances
"""
import copy
import math
import sys

import torch
import torch.nn as nn

from dmvae.losses import dm_loss, flow_matching_loss

NULL = 1  # one real class (0) plus the null class, so CFG runs through the same code as images


class ToyVelocity(nn.Module):
    """v(x [N, 2], t [N], y [N]) with Fourier time features and a label embedding."""

    def __init__(self, width=128):
        super().__init__()
        self.register_buffer("freqs", torch.arange(1, 9, dtype=torch.float32) * math.pi)
        self.label = nn.Embedding(NULL + 1, 16)
        self.net = nn.Sequential(nn.Linear(2 + 16 + 16, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))

    def forward(self, x, t, y):
        tf = t[:, None] * self.freqs
        return self.net(torch.cat([x, tf.sin(), tf.cos(), self.label(y)], dim=1))


def two_moons(n, generator):
    """Two interleaved half circles with a little noise, scaled to about unit spread."""
    a = torch.rand(n, generator=generator) * math.pi
    upper = torch.rand(n, generator=generator) < 0.5
    x = torch.where(upper, a.cos(), 1 - a.cos())
    y = torch.where(upper, a.sin(), 0.5 - a.sin())
    pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 1.2
    return pts + 0.04 * torch.randn(n, 2, generator=generator)


def sliced_wasserstein(a, b, directions):
    """Mean over fixed directions of the 1-D W1 distance; a and b have equal sizes."""
    pa, pb = (a @ directions.T).sort(dim=0).values, (b @ directions.T).sort(dim=0).values
    return (pa - pb).abs().mean().item()


def train_teacher(gen, steps=1500, batch=512):
    teacher = ToyVelocity()
    opt = torch.optim.Adam(teacher.parameters(), lr=5e-3)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        z = two_moons(batch, gen)
        y = torch.zeros(batch, dtype=torch.long)
        loss = flow_matching_loss(teacher, z, y, NULL, label_dropout=0.1, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
    return teacher.requires_grad_(False)


def run_toy(seed, n_points=512, iters=600, k=2, cfg_scale=1.5):
    """Returns (sliced Wasserstein at start, at end) between the points and a fixed reference."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    teacher = train_teacher(gen)
    student = copy.deepcopy(teacher).requires_grad_(True)  # starts as the teacher, as in DMD
    points = nn.Parameter(torch.rand(n_points, 2, generator=gen) * 4 - 2)  # uniform on a square
    opt_s = torch.optim.Adam(student.parameters(), lr=1e-3)
    opt_p = torch.optim.Adam([points], lr=1e-2)
    decay_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, -(-iters // k))  # less jitter late
    y = torch.zeros(n_points, dtype=torch.long)

    reference = two_moons(n_points, torch.Generator().manual_seed(10_000 + seed))
    directions = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    directions = directions / directions.norm(dim=1, keepdim=True)
    start = sliced_wasserstein(points.detach(), reference, directions)

    for it in range(iters):
        # the student follows where the points are now
        s_loss = flow_matching_loss(student, points.detach(), y, NULL, label_dropout=0.1,
                                    generator=gen)
        opt_s.zero_grad()
        s_loss.backward()
        opt_s.step()
        if it % k == 0:
            loss, _ = dm_loss(points, teacher, student, y, NULL, cfg_scale, t_min=0.02,
                              t_max=0.98, generator=gen)
            opt_p.zero_grad()
            loss.backward()
            opt_p.step()
            decay_p.step()
    return start, sliced_wasserstein(points.detach(), reference, directions)


def test_dm_loss_moves_uniform_points_onto_two_moons():
    start, end = run_toy(seed=0)
    assert end < 0.5 * start, (start, end)


if __name__ == "__main__":
    import time
    for s in map(int, sys.argv[1:] or ["0"]):
        t0 = time.time()
        print(s, run_toy(s), f"{time.time() - t0:.1f}s", flush=True)
