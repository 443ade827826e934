"""Stage 1, tokenizer pretraining: frozen SSL encoder, trainable MLP bottleneck and decoder.

    python -m dmvae tokenizer --config configs/fmnist.json --run-dir runs/fmnist

Loss: l1 |x - r| + l2 (x - r)^2 + perceptual (frozen SSL features, or LPIPS from a file), plus
from tokenizer.gan_start on a PatchGAN hinge loss scaled by the adaptive weight.
"""
import math

import torch

from .. import data
from ..distributed import wrap
from ..models.patchgan import PatchGAN, adaptive_weight, hinge_d_loss, hinge_g_loss
from ..runtime import adamw, batches, lr_at, rng_state, seed_everything, set_lr, set_rng_state
from ..runtime import train_loop
from .common import ReconLoss, build_tokenizer, load_ssl_encoder

STAGE = "tokenizer"


class Trunk(torch.nn.Module):
    """The trainable part of this stage: SSL tokens [N, L, D] -> image."""

    def __init__(self, tok):
        super().__init__()
        self.bottleneck, self.decoder, self.grid = tok.bottleneck, tok.decoder, tok.grid

    def forward(self, feats):
        return self.decoder(self.bottleneck(feats, self.grid))


def run(run):
    cfg, d, log = run.cfg, run.dist, run.log
    tc = cfg.tokenizer
    state = run.load(STAGE)
    if run.is_done(STAGE, state):
        log.info(f"[{STAGE}] already done ({run.ckpt_path(STAGE)}); skipping")
        return
    vit = load_ssl_encoder(run, STAGE)
    seed_everything(cfg.seed + 1 + 1000 * d.rank)
    tok = build_tokenizer(cfg)
    tok.encoder.load_state_dict(vit.state_dict())
    tok.encoder.requires_grad_(False).eval()   # frozen in this stage
    tok.to(d.device)
    trainable = [p for p in tok.parameters() if p.requires_grad]
    opt = adamw(trainable, tc.optim)
    recon_loss = ReconLoss(tc, vit).to(d.device)
    use_gan = tc.gan_start is not None
    disc = PatchGAN(cfg.ssl.model.in_channels, tc.disc_channels).to(d.device) if use_gan else None
    opt_d = torch.optim.AdamW(disc.parameters(), lr=tc.disc_lr, betas=(0.5, 0.9)) if use_gan else None
    start = 0
    if state:
        tok.load_state_dict(state["tokenizer"])
        opt.load_state_dict(state["opt"])
        if use_gan and "disc" in state:
            disc.load_state_dict(state["disc"])
            opt_d.load_state_dict(state["opt_d"])
        set_rng_state(state["rng"])
        start = state["step"]
        log.info(f"[{STAGE}] resuming from step {start}")
    trunk = wrap(Trunk(tok), d)
    ddisc = wrap(disc, d) if use_gan else None
    it = batches(data.load_split(cfg, "train"), tc.batch_size, cfg.seed, d, start,
                 cfg.data.num_workers)

    def step_fn(step):
        x, _ = next(it)
        set_lr(opt, lr_at(step, tc.steps, tc.optim))
        with torch.no_grad():
            feats = tok.encoder(x)
        recon = trunk(feats)
        rec, parts = recon_loss(recon, x)
        loss, out = rec, {}
        if use_gan and step >= tc.gan_start:
            g_loss = hinge_g_loss(ddisc(recon))
            w = adaptive_weight(rec, g_loss, tok.decoder.last_layer)
            loss = rec + tc.gan_weight * w * g_loss
            out.update(g_loss=g_loss.item(), gan_w=w.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, tc.optim.grad_clip)
        opt.step()
        if use_gan and step >= tc.gan_start:
            d_loss = hinge_d_loss(ddisc(x), ddisc(recon.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            out["d_loss"] = d_loss.item()
        psnr = 10 * math.log10(4.0 / parts["l2"]) if parts["l2"] > 0 else 99.0  # range [-1, 1]
        return {"loss": loss.item(), **{f"{k}_loss": v for k, v in parts.items()}, **out,
                "train_psnr": psnr}

    def state_fn(step):
        s = {"tokenizer": tok.state_dict(), "opt": opt.state_dict(), "step": step,
             "rng": rng_state()}
        if use_gan:
            s.update(disc=disc.state_dict(), opt_d=opt_d.state_dict())
        return s

    train_loop(run, STAGE, tc.steps, start, step_fn, state_fn)
