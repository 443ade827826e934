"""Flow-matching and DM losses: exact values and the gradient the DM loss puts on the latents.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_losses.py
"""
import pytest
import torch

from dmvae.losses import cfg_velocity, dm_loss, flow_matching_loss, sample_t

NULL = 3


def linear_field(a, b):
    """v = a * x + b * (y + 1) + t: simple, label- and time-dependent, known in closed form."""
    def fn(x, t, y):
        shape = (-1,) + (1,) * (x.ndim - 1)
        return a * x + b * (y.to(x.dtype) + 1).view(shape) + t.view(shape)
    return fn


def test_flow_matching_loss_is_the_mse_to_z_minus_e():
    torch.manual_seed(0)
    z, e = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3)
    t, y = torch.rand(5), torch.tensor([0, 1, 2, 0, 1])
    model = linear_field(0.5, -0.2)
    loss = flow_matching_loss(model, z, y, NULL, t=t, noise=e)
    tb = t.view(-1, 1, 1, 1)
    expected = ((model(tb * z + (1 - tb) * e, t, y) - (z - e)) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_flow_matching_loss_trains_the_model_and_is_reproducible():
    lin = torch.nn.Linear(4, 4)
    model = lambda x, t, y: lin(x)  # noqa: E731
    z, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    a = flow_matching_loss(model, z, y, NULL, generator=torch.Generator().manual_seed(1))
    b = flow_matching_loss(model, z, y, NULL, generator=torch.Generator().manual_seed(1))
    assert a.ndim == 0 and a.item() == b.item()
    a.backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("p,expect_null", [(0.0, 0), (1.0, 64)])
def test_label_dropout_replaces_labels_with_null(p, expect_null):
    seen = []

    def model(x, t, y):
        seen.append(y.clone())
        return x

    y = torch.randint(0, NULL, (64,))
    flow_matching_loss(model, torch.randn(64, 2), y, NULL, label_dropout=p)
    assert int((seen[0] == NULL).sum()) == expect_null


def test_label_dropout_rate_is_roughly_right():
    seen = []
    model = lambda x, t, y: seen.append(y) or x  # noqa: E731
    flow_matching_loss(model, torch.randn(4000, 1), torch.zeros(4000, dtype=torch.long), NULL,
                       label_dropout=0.1, generator=torch.Generator().manual_seed(0))
    assert 0.08 < (seen[0] == NULL).float().mean().item() < 0.12


def test_t_sampling_ranges():
    g = torch.Generator().manual_seed(0)
    u = sample_t(10000, "cpu", g, "uniform", 0.2, 0.6)
    assert u.min() >= 0.2 and u.max() <= 0.6 and abs(u.mean().item() - 0.4) < 0.01
    ln = sample_t(10000, "cpu", g, "logit_normal")
    assert 0 < ln.min() and ln.max() < 1 and ln.std() < u.std() * 3  # concentrated mid-range
    with pytest.raises(ValueError):
        sample_t(4, "cpu", None, "beta")


def test_cfg_velocity_uses_one_batched_call():
    calls = []

    def model(x, t, y):
        calls.append(y.tolist())
        return y.to(x.dtype).view(-1, 1).expand_as(x)

    v = cfg_velocity(model, torch.zeros(2, 3), torch.rand(2), torch.tensor([0, 2]), NULL, 4.0)
    assert calls == [[0, 2, NULL, NULL]]
    torch.testing.assert_close(v[:, 0], torch.tensor([NULL + 4.0 * (0 - NULL), NULL + 4.0 * (2 - NULL)]))


def test_dm_loss_gradient_on_z_is_g_over_numel():
    torch.manual_seed(0)
    z = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    e = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    t = torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1])
    teacher, student, w = linear_field(0.3, 0.5), linear_field(-0.4, 0.1), 2.5
    loss, stats = dm_loss(z, teacher, student, y, NULL, w, t=t, noise=e)
    loss.backward()

    # expected g, from the formulas written out by hand
    tb, zd = t.view(-1, 1, 1, 1), z.detach()
    x_t = tb * zd + (1 - tb) * e

    def guided(fn):
        return fn(x_t, t, torch.full_like(y, NULL)) + w * (fn(x_t, t, y) - fn(x_t, t, torch.full_like(y, NULL)))

    z_t, z_s = x_t + (1 - tb) * guided(teacher), x_t + (1 - tb) * guided(student)
    g = ((zd - z_t) - (zd - z_s)) / (zd - z_t).abs().mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(z.grad, g / z.numel())
    torch.testing.assert_close(loss, 0.5 * (g**2).mean())
    assert stats["dm_grad_abs"] == pytest.approx(g.abs().mean().item())
    assert stats["dm_nonfinite"] == 0.0


def test_dm_loss_zeroes_nonfinite_g_and_leaves_networks_without_grad():
    lin = torch.nn.Linear(3, 3)
    net = lambda x, t, y: lin(x)  # noqa: E731
    z = torch.randn(2, 3, requires_grad=True)
    t = torch.tensor([1.0, 0.5])  # t = 1: zT = zS = z, so g = 0 / 0
    loss, stats = dm_loss(z, net, net, torch.zeros(2, dtype=torch.long), NULL, 3.0, t=t)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(z.grad[0] == 0)
    assert stats["dm_nonfinite"] == pytest.approx(0.5)
    assert lin.weight.grad is None


def test_dm_loss_moves_points_toward_the_teacher():
    # teacher: data is a point mass at +2 (v = (2 - x) / (1 - t)); student: the points, at 0
    to_point = lambda c: (lambda x, t, y: (c - x) / (1 - t).view(-1, 1))  # noqa: E731
    z = torch.zeros(16, 2, requires_grad=True)
    loss, _ = dm_loss(z, to_point(2.0), to_point(0.0), torch.zeros(16, dtype=torch.long), NULL,
                      1.0, t_max=0.9, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.all(z.grad < 0)  # gradient descent increases z, toward 2
