"""Stage 2, reference distribution: what the align stage pulls the latents toward.

    python -m dmvae reference --config configs/fmnist.json --run-dir runs/fmnist

kind "ssl" (default): a class-conditional flow-matching DiT trained on the stage-1 latents
(bottlenecked SSL features), normalised by their measured mean and scale.
kind "gaussian": N(0, I) in that normalised space; its velocity is exact, nothing to train.
"""
import copy

import torch

from ..distributed import wrap
from ..losses import flow_matching_loss
from ..runtime import adamw, ema_update, lr_at, rng_state, seed_everything, set_lr
from ..runtime import set_rng_state, train_loop
from .common import build_dit, latent_source, load_tokenizer, num_classes

STAGE = "reference"


def run(run):
    cfg, d, log = run.cfg, run.dist, run.log
    rc = cfg.reference
    state = run.load(STAGE)
    if run.is_done(STAGE, state):
        log.info(f"[{STAGE}] already done ({run.ckpt_path(STAGE)}); skipping")
        return
    tok = load_tokenizer(run, "tokenizer", STAGE)
    seed_everything(cfg.seed + 2 + 1000 * d.rank)
    make_batches, mean, scale = latent_source(run, tok, rc, STAGE)
    if state:  # keep the statistics the interrupted run trained with
        mean, scale = state["latent_mean"], state["latent_scale"]
    log.info(f"[{STAGE}] stage-1 latent mean {mean:.4f} scale {scale:.4f} (kind {rc.kind})")
    if rc.kind == "gaussian":
        run.save(STAGE, {"kind": "gaussian", "latent_mean": mean, "latent_scale": scale,
                         "step": 0, "trained": False}, done=True)
        return

    model = build_dit(cfg, rc.model, tok.latent_shape).to(d.device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = adamw(model.parameters(), rc.optim)
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
        set_lr(opt, lr_at(step, rc.steps, rc.optim))
        loss = flow_matching_loss(ddp, (z - mean) * scale, y, null, rc.label_dropout)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), rc.optim.grad_clip)
        opt.step()
        ema_update(ema, model, rc.ema_decay, step)
        return {"fm_loss": loss.item(), "grad_norm": gn.item()}

    def state_fn(step):
        return {"kind": "ssl", "model": model.state_dict(), "ema": ema.state_dict(),
                "opt": opt.state_dict(), "step": step, "rng": rng_state(),
                "latent_mean": mean, "latent_scale": scale}

    train_loop(run, STAGE, rc.steps, start, step_fn, state_fn)
