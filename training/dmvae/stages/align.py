"""Stage 3, distribution matching (METHOD.md): pull the aggregate latent distribution onto the
reference while keeping reconstructions.

    python -m dmvae align --config configs/fmnist.json --run-dir runs/fmnist

Teacher ("real" score): frozen reference model (EMA weights), with CFG.
Student ("fake" score): a DiT trained online, every step, with flow matching on the current
latents (detached); it starts as a copy of the teacher, which is then exactly right at step 0
and only has to follow the latents as they move.
VAE (encoder, bottleneck, decoder; all trainable): every k steps, recon + lambda * DM loss.
All latents are in the reference's normalised space (z - mean) * scale.
"""
import copy
import math

import torch

from .. import data
from ..distributed import wrap
from ..losses import dm_loss, flow_matching_loss
from ..runtime import batches, rng_state, seed_everything, set_rng_state, train_loop
from .common import GaussianReference, ReconLoss, build_dit, load_tokenizer, num_classes

STAGE = "align"


def load_reference(run, latent_shape):
    """-> (teacher velocity model, latent_mean, latent_scale, dit state for the student)."""
    state = run.require("reference", STAGE)
    mean, scale = state["latent_mean"], state["latent_scale"]
    if state["kind"] == "gaussian":
        return GaussianReference(), mean, scale, None
    teacher = build_dit(run.cfg, run.cfg.reference.model, latent_shape)
    teacher.load_state_dict(state["ema"])
    return teacher, mean, scale, state["ema"]


def run(run):
    cfg, d, log = run.cfg, run.dist, run.log
    ac = cfg.align
    state = run.load(STAGE)
    if run.is_done(STAGE, state):
        log.info(f"[{STAGE}] already done ({run.ckpt_path(STAGE)}); skipping")
        return
    vae = load_tokenizer(run, "tokenizer", STAGE)
    teacher, mean, scale, teacher_sd = load_reference(run, vae.latent_shape)
    teacher.to(d.device).eval().requires_grad_(False)
    seed_everything(cfg.seed + 3 + 1000 * d.rank)
    student = build_dit(cfg, cfg.reference.model, vae.latent_shape)
    if teacher_sd is not None:
        student.load_state_dict(teacher_sd)
    vae.encoder.requires_grad_(ac.train_encoder)
    # only the ssl stage masks patches: a parameter with no gradient would stall DDP's reducer
    vae.encoder.mask_token.requires_grad_(False)
    vae.to(d.device).train()
    student.to(d.device).train()
    frozen_encoder = copy.deepcopy(vae.encoder)  # perceptual features stay the stage-1 ones
    recon_loss = ReconLoss(cfg.tokenizer, frozen_encoder).to(d.device)
    vae_params = [p for p in vae.parameters() if p.requires_grad]
    betas = tuple(ac.betas)
    opt_vae = torch.optim.AdamW(vae_params, lr=ac.vae_lr, betas=betas, weight_decay=0.0)
    opt_student = torch.optim.AdamW(student.parameters(), lr=ac.student_lr, betas=betas,
                                    weight_decay=0.0)
    start = 0
    if state:
        vae.load_state_dict(state["tokenizer"])
        student.load_state_dict(state["student"])
        opt_vae.load_state_dict(state["opt_vae"])
        opt_student.load_state_dict(state["opt_student"])
        set_rng_state(state["rng"])
        start = state["step"]
        log.info(f"[{STAGE}] resuming from step {start}")
    dvae, dstudent, null = wrap(vae, d), wrap(student, d), num_classes(cfg)
    it = batches(data.load_split(cfg, "train"), ac.batch_size, cfg.seed, d, start,
                 cfg.data.num_workers)

    def step_fn(step):
        x, y = next(it)
        out = {}
        # the student follows the current latent distribution, every step
        with torch.no_grad():
            zn = (vae.encode(x) - mean) * scale
        s_loss = flow_matching_loss(dstudent, zn, y, null, cfg.reference.label_dropout)
        opt_student.zero_grad(set_to_none=True)
        s_loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), ac.grad_clip)
        opt_student.step()
        out["student_loss"] = s_loss.item()
        # the VAE moves its latents toward the reference, every k steps
        if step % ac.k == 0:
            recon, z = dvae(x)
            rec, parts = recon_loss(recon, x)
            dm, stats = dm_loss((z - mean) * scale, teacher, student, y, null, ac.cfg_scale,
                                ac.t_min, ac.t_max)
            loss = rec + ac.dm_weight * dm
            opt_vae.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae_params, ac.grad_clip)
            opt_vae.step()
            out.update(vae_loss=loss.item(), rec_loss=rec.item(), dm_loss=dm.item(),
                       train_psnr=10 * math.log10(4.0 / max(parts["l2"], 1e-12)),
                       **stats)
        return out

    def state_fn(step):
        return {"tokenizer": vae.state_dict(), "student": student.state_dict(),
                "opt_vae": opt_vae.state_dict(), "opt_student": opt_student.state_dict(),
                "step": step, "rng": rng_state(), "latent_mean": mean, "latent_scale": scale}

    train_loop(run, STAGE, ac.steps, start, step_fn, state_fn)
