"""The flow-matching sampler of docs/model-format.md ("Sampler"), the reference for the service.

t = 0 is noise, t = 1 is data; x_t = t z + (1 - t) e and the model predicts v = z - e.
The service re-implements this loop in TypeScript over ONNX Runtime and must reproduce the
golden latents, so every detail here (grid, CFG batching, Heun on the last step) is contract.
"""
import math

import numpy as np
import torch

METHODS = ("euler", "heun")


def time_grid(steps, shift=2.5):
    """float64 [steps + 1] from 0 to 1; shift s > 1 spends more steps near the noise end."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not (math.isfinite(shift) and shift > 0):
        raise ValueError(f"shift must be a positive finite number, got {shift!r}")
    rest = 1.0 - np.arange(steps + 1, dtype=np.float64) / steps  # 1 - tau_i
    return 1.0 - shift * rest / (1.0 + (shift - 1.0) * rest)


def guided_velocity(velocity_fn, x, t, y, null_class, cfg_scale=1.0, cfg_interval=(0.0, 1.0)):
    """Velocity at (x [N, ...], scalar t) for labels y [N]; CFG as one batched call on [x; x]."""
    n = x.shape[0]
    t_batch = torch.full((n,), float(t), dtype=torch.float32, device=x.device)
    lo, hi = cfg_interval
    if cfg_scale == 1.0 or not lo <= t <= hi:
        return velocity_fn(x, t_batch, y)
    null = torch.full_like(y, null_class)
    v = velocity_fn(torch.cat([x, x]), torch.cat([t_batch, t_batch]), torch.cat([y, null]))
    v_cond, v_uncond = v[:n], v[n:]
    return v_uncond + cfg_scale * (v_cond - v_uncond)


def _check_settings(method, cfg_scale, cfg_interval):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not math.isfinite(cfg_scale):
        raise ValueError(f"cfg_scale must be finite, got {cfg_scale!r}")
    lo, hi = cfg_interval
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"cfg_interval must satisfy 0 <= lo <= hi <= 1, got {cfg_interval!r}")


@torch.no_grad()
def sample(velocity_fn, noise, labels, null_class, steps, method="heun", cfg_scale=1.0,
           cfg_interval=(0.0, 1.0), shift=2.5, on_step=None):
    """Integrate from noise (t = 0) to data (t = 1); returns the normalised latent x_steps.

    velocity_fn(x [N, ...] float32, t [N] float32, y [N] int64) -> v [N, ...].
    noise: [N, ...] tensor or array (e.g. noise.latent_noise); labels: int or [N] in
    0..null_class (null_class itself samples unconditionally).
    on_step(step, steps, t) is called after every sampler step with the t it reached, as the
    service reports progress (one per step for Euler and Heun alike).
    Un-normalising (z = x / latent_scale + latent_mean) is left to the caller.
    """
    _check_settings(method, cfg_scale, cfg_interval)
    x = torch.as_tensor(noise).to(torch.float32).clone()
    n = x.shape[0]
    y = torch.as_tensor(labels, dtype=torch.long, device=x.device)
    y = y.expand(n).clone() if y.ndim == 0 else y
    if y.shape != (n,):
        raise ValueError(f"labels must be a scalar or shape [{n}], got {tuple(y.shape)}")
    if n and (int(y.min()) < 0 or int(y.max()) > null_class):
        raise ValueError(f"labels must be in 0..{null_class}, got {y.tolist()}")

    grid = time_grid(steps, shift)

    def velocity(x_now, t):
        return guided_velocity(velocity_fn, x_now, t, y, null_class, cfg_scale, cfg_interval)

    for i in range(steps):
        t0, t1 = grid[i], grid[i + 1]
        h = float(t1 - t0)
        d1 = velocity(x, t0)
        if method == "euler":
            x = x + h * d1
        else:  # Heun on every step, the last included (t1 = 1 is a regular point here)
            d2 = velocity(x + h * d1, t1)
            x = x + h * (d1 + d2) / 2
        if on_step is not None:
            on_step(i + 1, steps, float(t1))
    return x


def denormalize(x, latent_mean, latent_scale):
    """Generator space -> raw latent, the inverse of (z - mean) * scale."""
    return x / latent_scale + latent_mean
