"""Pieces several stages share: rebuilding models from checkpoints, encoding a dataset, the
reconstruction loss, and the Gaussian reference's exact velocity."""
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import data
from ..models.dit import DiT
from ..models.perceptual import LPIPS, SSLPerceptual
from ..models.tokenizer import Tokenizer
from ..models.vit import ViT


def num_classes(cfg):
    return len(data.class_names(cfg))


def build_tokenizer(cfg):
    return Tokenizer(cfg.ssl.model, cfg.tokenizer.model)


def build_dit(cfg, dit_cfg, latent_shape):
    return DiT(dit_cfg, latent_shape, num_classes(cfg))


def load_tokenizer(run, stage, needed_by):
    """Tokenizer weights from the final checkpoint of `stage` (tokenizer or align)."""
    state = run.require(stage, needed_by)
    tok = build_tokenizer(run.cfg)
    tok.load_state_dict(state["tokenizer"])
    return tok


def load_ssl_encoder(run, needed_by):
    state = run.require("ssl", needed_by)
    vit = ViT(run.cfg.ssl.model)
    vit.load_state_dict(state["vit"])
    return vit


@torch.no_grad()
def encode_dataset(tokenizer, images, device, batch_size=256, desc=None, d=None):
    """images [N, C, H, W] (CPU) -> raw latents [N, Cz, g, g] on CPU."""
    from ..runtime import progress
    tokenizer.eval()
    out = []
    bar = progress(images.shape[0], 0, desc, d) if d is not None else None
    for i in range(0, images.shape[0], batch_size):
        out.append(tokenizer.encode(images[i:i + batch_size].to(device)).cpu())
        if bar:
            bar.update(out[-1].shape[0])
    if bar:
        bar.close()
    return torch.cat(out)


def latent_stats(latents):
    """Scalar mean and scale with (z - mean) * scale of unit variance (stored in the manifest)."""
    mean = latents.mean().item()
    std = (latents - mean).std().item()
    return mean, 1.0 / max(std, 1e-8)


class ReconLoss(nn.Module):
    """l1 * |x - r| + l2 * (x - r)^2 + perceptual_weight * perceptual(r, x)."""

    def __init__(self, tcfg, ssl_vit=None):
        super().__init__()
        self.l1, self.l2, self.pw = tcfg.l1_weight, tcfg.l2_weight, tcfg.perceptual_weight
        self.perceptual = None
        if tcfg.perceptual == "ssl" and self.pw > 0:
            frozen = copy.deepcopy(ssl_vit).requires_grad_(False).eval()
            self.perceptual = SSLPerceptual(frozen, layers=range(min(2, len(frozen.blocks))))
        elif tcfg.perceptual == "lpips" and self.pw > 0:
            self.perceptual = LPIPS(tcfg.lpips_weights)

    def forward(self, recon, x):
        parts = {"l1": (recon - x).abs().mean(), "l2": F.mse_loss(recon, x)}
        total = self.l1 * parts["l1"] + self.l2 * parts["l2"]
        if self.perceptual is not None:
            parts["perceptual"] = self.perceptual(recon, x)
            total = total + self.pw * parts["perceptual"]
        return total, {k: v.item() for k, v in parts.items()}

    def to(self, *args, **kwargs):
        super().to(*args, **kwargs)
        if isinstance(self.perceptual, SSLPerceptual):
            self.perceptual._vit[0].to(*args, **kwargs)
        return self


class GaussianReference(nn.Module):
    """Exact velocity of the flow from N(0, I) noise to N(0, I) data: for x_t = t z + (1-t) e,
    E[z - e | x_t] = (2t - 1) x_t / (t^2 + (1-t)^2). Labels are ignored (CFG is then a no-op)."""

    def forward(self, x, t, y):
        tb = t.view(-1, *([1] * (x.ndim - 1)))
        return (2 * tb - 1) * x / (tb ** 2 + (1 - tb) ** 2)


# ---------------------------------------------------------------------------------------------
# Latent batches for the DiT stages (reference, generator)
# ---------------------------------------------------------------------------------------------

def latent_source(run, tokenizer, scfg, stage):
    """-> (endless-batches factory(start_step), latent_mean, latent_scale).

    cache_latents: encode the train split (or its first cache_limit images: the encoder pass
    is a real cost on CPU) once and batch the cached tensors; otherwise encode every batch on the fly (paper scale) and measure the
    statistics on `stats_batches` batches."""
    from torch.utils.data import TensorDataset
    from ..runtime import batches
    cfg, d = run.cfg, run.dist
    tokenizer.to(d.device).eval().requires_grad_(False)
    train = data.load_split(cfg, "train")
    if scfg.cache_latents:
        images, labels = data.stack(train, scfg.cache_limit)
        run.log.info(f"[{stage}] encoding {images.shape[0]} training images")
        z = encode_dataset(tokenizer, images, d.device, desc=f"{stage} encode", d=d)
        mean, scale = latent_stats(z)
        ds = TensorDataset(z, labels)
        return (lambda start: batches(ds, scfg.batch_size, cfg.seed, d, start)), mean, scale

    def encoded(start):
        for x, y in batches(train, scfg.batch_size, cfg.seed, d, start, cfg.data.num_workers):
            with torch.no_grad():
                yield tokenizer.encode(x), y

    it = encoded(0)
    sample = torch.cat([next(it)[0].cpu() for _ in range(scfg.stats_batches)])
    mean, scale = latent_stats(sample)
    return encoded, mean, scale
