"""Stage 4, generator: the class-conditional DiT the service samples from, on final latents.

    python -m dmvae generator --config configs/fmnist.json --run-dir runs/fmnist

Latents of the aligned VAE are normalised as (z - mean) * scale with mean and scale measured
here (they go into the manifest). Flow matching with label dropout; sampling and export use
the EMA weights. generator.init warm-starts from the reference model or the align student
(both already model latents close to these), which saves most of the CPU budget.
"""
import copy

import torch

from ..distributed import wrap
from ..losses import flow_matching_loss
from ..runtime import adamw, ema_update, lr_at, rng_state, seed_everything, set_lr
from ..runtime import set_rng_state, train_loop
from .common import build_dit, latent_source, load_tokenizer, num_classes

STAGE = "generator"


def initial_weights(run, gc):
    if gc.init == "reference":
        state = run.require("reference", STAGE)
        if state["kind"] == "gaussian":
            run.log.info(f"[{STAGE}] gaussian reference has no weights; starting from scratch")
            return None
        return state["ema"]
    if gc.init == "student":
        return run.require("align", STAGE)["student"]
    return None


def run(run):
    cfg, d, log = run.cfg, run.dist, run.log
    gc = cfg.generator
    state = run.load(STAGE)
    if run.is_done(STAGE, state):
        log.info(f"[{STAGE}] already done ({run.ckpt_path(STAGE)}); skipping")
        return
    tok = load_tokenizer(run, "align", STAGE)
    seed_everything(cfg.seed + 4 + 1000 * d.rank)
    make_batches, mean, scale = latent_source(run, tok, gc, STAGE)
    if state:
        mean, scale = state["latent_mean"], state["latent_scale"]
    log.info(f"[{STAGE}] final latent mean {mean:.4f} scale {scale:.4f}")
    model = build_dit(cfg, gc.model, tok.latent_shape)
    init = initial_weights(run, gc) if not state else None
    warm = state["warm_start"] if state else init is not None
    if init is not None:
        model.load_state_dict(init)
        log.info(f"[{STAGE}] warm start from {gc.init} weights")
    model.to(d.device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = adamw(model.parameters(), gc.optim)
    start = 0
    if state:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        set_rng_state(state["rng"])
        start = state["step"]
        log.info(f"[{STAGE}] resuming from step {start}")
    ddp, null = wrap(model, d), num_classes(cfg)
    it = make_batches(start)

    def step_fn(step):
        z, y = next(it)
        set_lr(opt, lr_at(step, gc.steps, gc.optim))
        loss = flow_matching_loss(ddp, (z - mean) * scale, y, null, gc.label_dropout)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), gc.optim.grad_clip)
        opt.step()
        # a warm start is already a good model: no EMA warm-up toward its random init needed
        ema_update(ema, model, gc.ema_decay, None if warm else step)
        return {"fm_loss": loss.item(), "grad_norm": gn.item()}

    def state_fn(step):
        return {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "step": step, "rng": rng_state(), "latent_mean": mean, "latent_scale": scale,
                "warm_start": warm}

    train_loop(run, STAGE, gc.steps, start, step_fn, state_fn)
