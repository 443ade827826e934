"""Training losses: flow matching (stages 2, 4 and the online student) and the DM loss (stage 3).

Conventions of the whole project: t = 1 is data, t = 0 is noise, x_t = t z + (1 - t) e and the
network predicts the velocity z - e. Models are callables (x [N, ...], t [N], y [N]) -> v.
"""
import torch

T_SAMPLINGS = ("uniform", "logit_normal")


def _per_sample(t, like):
    """[N] -> [N, 1, ..., 1] so it broadcasts against a batch shaped like `like`."""
    return t.view(-1, *([1] * (like.ndim - 1)))


def sample_t(n, device, generator=None, kind="uniform", t_min=0.0, t_max=1.0):
    """Per-sample times in [t_min, t_max]: uniform, or logit-normal(0, 1) (weights mid t more)."""
    if kind not in T_SAMPLINGS:
        raise ValueError(f"t sampling must be one of {T_SAMPLINGS}, got {kind!r}")
    if not 0.0 <= t_min <= t_max <= 1.0:
        raise ValueError(f"need 0 <= t_min <= t_max <= 1, got {t_min}, {t_max}")
    gen_device = generator.device if generator is not None else device
    if kind == "uniform":
        u = torch.rand(n, generator=generator, device=gen_device)
    else:
        u = torch.sigmoid(torch.randn(n, generator=generator, device=gen_device))
    return (t_min + (t_max - t_min) * u).to(device)


def _randn_like(x, generator):
    gen_device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=gen_device).to(x.device, x.dtype)


def flow_matching_loss(model, z, y, null_class, label_dropout=0.0, generator=None,
                       t_sampling="uniform", t=None, noise=None):
    """MSE between model(x_t, t, y) and z - e. Returns a scalar tensor.

    z: [N, ...] clean samples (normalised latents); y: [N] int64 labels.
    label_dropout: chance that a label becomes null_class, so the model also learns the
    unconditional velocity that CFG needs. t / noise override the random draws (for tests).
    """
    if not 0.0 <= label_dropout <= 1.0:
        raise ValueError(f"label_dropout must be in [0, 1], got {label_dropout}")
    n = z.shape[0]
    t = sample_t(n, z.device, generator, t_sampling) if t is None else t.to(z.device, z.dtype)
    e = _randn_like(z, generator) if noise is None else noise
    if label_dropout > 0:
        gen_device = generator.device if generator is not None else z.device
        drop = torch.rand(n, generator=generator, device=gen_device).to(z.device) < label_dropout
        y = torch.where(drop, torch.full_like(y, null_class), y)
    tb = _per_sample(t, z)
    x_t = tb * z + (1 - tb) * e
    v = model(x_t, t, y)
    return ((v - (z - e)) ** 2).mean()


def cfg_velocity(model, x, t, y, null_class, cfg_scale):
    """Guided velocity with per-sample t [N]: one call on [x; x] with labels [y; null]."""
    if cfg_scale == 1.0:
        return model(x, t, y)
    n = x.shape[0]
    v = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null_class)]))
    return v[n:] + cfg_scale * (v[:n] - v[n:])


def dm_loss(z, teacher, student, y, null_class, cfg_scale, t_min=0.0, t_max=1.0,
            generator=None, student_cfg_scale=None, t=None, noise=None):
    """Distribution-matching loss on latents z [N, ...] (METHOD.md stage 3).

    Returns (loss, stats). d loss / d z = g / z.numel(), where per sample
    g = (zS - zT) / mean|z - zT|: descending moves z away from where the student (the current
    latent distribution) says it is, toward where the teacher (the reference) says it should be.
    Neither network gets a gradient from this loss; train the student separately.
    student_cfg_scale defaults to cfg_scale (METHOD.md guides both).
    """
    n = z.shape[0]
    s_scale = cfg_scale if student_cfg_scale is None else student_cfg_scale
    with torch.no_grad():
        z0 = z.detach()
        t = sample_t(n, z.device, generator, "uniform", t_min, t_max) if t is None else t
        t = t.to(z.device, z.dtype)
        e = _randn_like(z0, generator) if noise is None else noise
        tb = _per_sample(t, z0)
        x_t = tb * z0 + (1 - tb) * e
        z_teacher = x_t + (1 - tb) * cfg_velocity(teacher, x_t, t, y, null_class, cfg_scale)
        z_student = x_t + (1 - tb) * cfg_velocity(student, x_t, t, y, null_class, s_scale)
        dims = tuple(range(1, z0.ndim))
        scale = (z0 - z_teacher).abs().mean(dim=dims, keepdim=True)
        g = (z_student - z_teacher) / scale
        finite = torch.isfinite(g)  # t = 1 gives 0 / 0: such samples simply do not move
        g = torch.where(finite, g, torch.zeros_like(g))
        stats = {
            "dm_grad_abs": g.abs().mean().item(),
            "dm_teacher_err": (z0 - z_teacher).abs().mean().item(),
            "dm_student_err": (z0 - z_student).abs().mean().item(),
            "dm_nonfinite": 1.0 - finite.float().mean().item(),
        }
    loss = 0.5 * ((z - (z0 - g)) ** 2).mean()
    return loss, stats
