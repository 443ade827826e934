"""Sampler contract (docs/model-format.md "Sampler"): grid, ODE accuracy, exact CFG batching.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_sampling.py
"""
import numpy as np
import pytest
import torch

from dmvae.noise import latent_noise
from dmvae.sampling import denormalize, sample, time_grid


# ---- grid -------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps,shift", [(1, 1.0), (8, 1.0), (16, 2.5), (50, 4.0), (3, 0.5)])
def test_grid_runs_from_noise_to_data_and_increases(steps, shift):
    g = time_grid(steps, shift)
    assert g.dtype == np.float64 and g.shape == (steps + 1,)
    assert g[0] == 0.0 and g[-1] == 1.0
    assert np.all(np.diff(g) > 0)


def test_grid_shift_one_is_uniform_and_shift_matches_the_formula():
    np.testing.assert_allclose(time_grid(10, 1.0), np.linspace(0, 1, 11), atol=1e-15)
    # tau = 0.5, s = 2.5: t = 1 - 2.5 * 0.5 / (1 + 1.5 * 0.5) = 1 - 1.25 / 1.75
    assert time_grid(2, 2.5)[1] == pytest.approx(1 - 1.25 / 1.75, abs=1e-15)
    assert np.all(time_grid(16, 2.5)[1:-1] < time_grid(16, 1.0)[1:-1])  # crowded near noise


@pytest.mark.parametrize("steps,shift", [(0, 1.0), (-2, 1.0), (2.5, 1.0), (4, 0.0), (4, float("nan"))])
def test_grid_rejects_bad_settings(steps, shift):
    with pytest.raises(ValueError):
        time_grid(steps, shift)


# ---- ODE accuracy on an exactly solvable field -------------------------------------------------

MU, SIGMA = 1.5, 0.5  # data ~ N(MU, SIGMA^2) per coordinate, noise ~ N(0, 1)


def gaussian_velocity(x, t, y):
    """E[z - e | x_t = x] for Gaussian data; its flow maps e to MU + SIGMA * e exactly."""
    t = t.view(-1, *([1] * (x.ndim - 1))).double()
    var = t**2 * SIGMA**2 + (1 - t) ** 2
    return (MU + (t * SIGMA**2 - (1 - t)) * (x.double() - t * MU) / var).float()


def _endpoint_error(method, steps, shift):
    e = torch.from_numpy(latent_noise(7, 64, (8,)))
    x = sample(gaussian_velocity, e, 0, 1, steps, method=method, shift=shift)
    return (x - (MU + SIGMA * e)).abs().max().item()


@pytest.mark.parametrize("shift", [1.0, 2.5])
def test_euler_and_heun_converge_and_heun_is_second_order(shift):
    euler = [_endpoint_error("euler", n, shift) for n in (8, 16, 32)]
    heun = [_endpoint_error("heun", n, shift) for n in (8, 16, 32)]
    assert euler[0] > euler[1] > euler[2] and heun[0] > heun[1] > heun[2]
    assert 1.6 < euler[1] / euler[2] < 2.5  # first order: halving h halves the error
    assert 3.0 < heun[1] / heun[2] < 8.0  # second order: about a quarter (still pre-asymptotic)
    assert heun[0] < euler[0] / 10  # far better at equal steps
    assert heun[2] < 1e-3


# ---- CFG and call pattern ----------------------------------------------------------------------

class Recorder:
    """Velocity = label value everywhere (null -> NULL), recording every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, y):
        assert x.dtype == torch.float32 and t.dtype == torch.float32 and y.dtype == torch.long
        assert t.shape == (x.shape[0],) and y.shape == (x.shape[0],)
        self.calls.append((x.shape[0], t.clone(), y.clone()))
        return y.float().view(-1, 1, 1, 1).expand_as(x).clone()


NULL = 10


def test_cfg_combines_conditional_and_unconditional_in_one_batched_call():
    rec = Recorder()
    noise = torch.zeros(3, 2, 2, 2)
    labels = torch.tensor([0, 4, 9])
    x = sample(rec, noise, labels, NULL, steps=1, method="euler", cfg_scale=3.0, shift=1.0)
    # one Euler step of size 1: x = v = vU + w (vC - vU) = 10 + 3 (y - 10)
    expected = (NULL + 3.0 * (labels.float() - NULL)).view(-1, 1, 1, 1).expand_as(noise)
    torch.testing.assert_close(x, expected)
    assert len(rec.calls) == 1
    n, t, y = rec.calls[0]
    assert n == 6 and y.tolist() == [0, 4, 9, NULL, NULL, NULL]
    assert t.tolist() == [0.0] * 6


def test_cfg_applies_only_inside_its_interval_inclusive():
    rec = Recorder()
    steps, lo, hi = 10, 0.3, 0.7
    sample(rec, torch.zeros(2, 1, 1, 1), 5, NULL, steps, method="heun", cfg_scale=2.0,
           cfg_interval=(lo, hi), shift=1.0)
    grid = time_grid(steps, 1.0)
    expected_t = [t for i in range(steps) for t in (grid[i], grid[i + 1])]  # d1, d2 per step
    assert len(rec.calls) == 2 * steps
    for (n, t, y), t_expected in zip(rec.calls, expected_t):
        assert t.tolist() == pytest.approx([t_expected] * n)
        inside = lo <= t_expected <= hi
        assert n == (4 if inside else 2), t_expected
        assert y.tolist() == ([5, 5, NULL, NULL] if inside else [5, 5])


def test_cfg_scale_one_is_a_single_conditional_call_per_evaluation():
    rec = Recorder()
    x = sample(rec, torch.zeros(2, 1, 1, 1), torch.tensor([1, 2]), NULL, 4, method="heun",
               cfg_scale=1.0, shift=2.5)
    assert [c[0] for c in rec.calls] == [2] * 8
    torch.testing.assert_close(x.view(-1), torch.tensor([1.0, 2.0]))  # constant v, total time 1


def test_heun_evaluates_the_last_step_too_and_reports_progress_once_a_step():
    rec, progress = Recorder(), []
    sample(rec, torch.zeros(1, 1, 1, 1), 3, NULL, 5, method="heun", shift=2.5,
           on_step=lambda step, steps, t: progress.append((step, steps, t)))
    assert len(rec.calls) == 10 and rec.calls[-1][1].item() == 1.0
    assert [p[:2] for p in progress] == [(i, 5) for i in range(1, 6)]
    ts = [p[2] for p in progress]  # the t each step reached: rising to exactly 1
    assert ts == sorted(ts) and ts[0] > 0 and ts[-1] == 1.0


def test_sampling_runs_without_grad_and_accepts_numpy_noise():
    lin = torch.nn.Linear(4, 4)
    x = sample(lambda x, t, y: lin(x), latent_noise(1, 2, (4,)), 0, NULL, 3, method="euler")
    assert not x.requires_grad and x.shape == (2, 4) and x.dtype == torch.float32


def test_denormalize_inverts_normalisation():
    z = torch.randn(3, 4)
    torch.testing.assert_close(denormalize((z - 0.07) * 0.18, 0.07, 0.18), z)


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="rk4"), "method"),
    (dict(cfg_interval=(0.8, 0.2)), "cfg_interval"),
    (dict(cfg_scale=float("inf")), "cfg_scale"),
    (dict(labels=11), "labels"),
    (dict(labels=torch.tensor([1, 2, 3])), "labels"),
])
def test_bad_sampler_settings_are_value_errors(kwargs, match):
    args = dict(labels=0, method="heun")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sample(Recorder(), torch.zeros(2, 1), args.pop("labels"), NULL, 4, **args)
