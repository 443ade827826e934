"""Stage 0, SSL encoder: train the small ViT without labels, or load DINOv2 from a file.

    python -m dmvae ssl --config configs/fmnist.json --run-dir runs/fmnist

Objective (no labels): two randomly shifted views of each image, each with a random subset of
patch tokens replaced by a mask token (SimMIM-style). A linear head predicts every patch's
pixels from its output token: masked tokens must infer them from context (semantics), visible
tokens must keep their own pixels (spatial detail, which the tokenizer's PSNR depends on).
A cosine term makes the two views' pooled token features agree (augmentation invariance),
with a VICReg-style variance hinge on the projections so that agreement cannot come from
collapsing them to a constant.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import data
from ..distributed import unwrap, wrap
from ..models.vit import ViT, load_dinov2
from ..runtime import adamw, batches, lr_at, rng_state, seed_everything, set_lr, set_rng_state
from ..runtime import train_loop

STAGE = "ssl"


class SSLPretext(nn.Module):
    """ViT + pixel head + projector; forward returns the pretext losses."""

    def __init__(self, vcfg):
        super().__init__()
        self.vit = ViT(vcfg)
        p, c = vcfg.patch_size, vcfg.in_channels
        self.pixel_head = nn.Linear(vcfg.dim, p * p * c)
        self.projector = nn.Sequential(nn.Linear(vcfg.dim, vcfg.dim), nn.GELU(),
                                       nn.Linear(vcfg.dim, vcfg.dim))

    def patchify(self, x):                                   # [N, C, H, W] -> [N, L, p*p*C]
        p = self.vit.cfg.patch_size
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(n, (h // p) * (w // p), p * p * c)

    def forward(self, views, masks, visible_weight):
        """views [2N, C, H, W]; masks bool [2N, L]. Returns (pixel_loss, invariance_loss)."""
        tokens = self.vit(views, mask=masks)
        err = (self.pixel_head(tokens) - self.patchify(views)).pow(2).mean(-1)   # [2N, L]
        weight = masks.float() + visible_weight * (~masks).float()
        pixel = (err * weight).sum() / weight.sum()
        proj = self.projector(tokens.mean(dim=1))                            # [2N, D]
        a, b = F.normalize(proj, dim=-1).chunk(2)
        spread = F.relu(1.0 - torch.sqrt(proj.var(dim=0) + 1e-4)).mean()  # std >= 1 per dim
        invariance = (1 - (a * b).sum(-1)).mean() + spread
        return pixel, invariance


def random_shift(x, max_shift, gen):
    """Translate each image by up to max_shift pixels (background fill -1 = black)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def random_masks(n, length, ratio, gen):
    scores = torch.rand(n, length, generator=gen)
    k = int(round(ratio * length))
    idx = scores.argsort(dim=1)[:, :k]
    mask = torch.zeros(n, length, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask


def run(run):
    cfg, d, log = run.cfg, run.dist, run.log
    sc = cfg.ssl
    if sc.model.weights:  # paper scale: the encoder is DINOv2, nothing to train
        vit = load_dinov2(ViT(sc.model), sc.model.weights, log.info)
        run.save(STAGE, {"vit": vit.state_dict(), "step": 0, "source": sc.model.weights,
                         "trained": False}, True)
        return
    state = run.load(STAGE)
    if run.is_done(STAGE, state):
        log.info(f"[{STAGE}] already done ({run.ckpt_path(STAGE)}); skipping")
        return
    seed_everything(cfg.seed + 1000 * d.rank)
    model = SSLPretext(sc.model).to(d.device)
    opt = adamw(model.parameters(), sc.optim)
    start = 0
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        set_rng_state(state["rng"])
        start = state["step"]
        log.info(f"[{STAGE}] resuming from step {start}")
    ddp = wrap(model, d)
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + start + d.rank)
    it = batches(data.load_split(cfg, "train"), sc.batch_size, cfg.seed, d, start,
                 cfg.data.num_workers)
    length = unwrap(ddp).vit.grid ** 2

    def step_fn(step):
        x, _ = next(it)
        x = x.cpu()
        views = torch.cat([random_shift(x, sc.max_shift, gen), random_shift(x, sc.max_shift, gen)])
        masks = random_masks(views.shape[0], length, sc.mask_ratio, gen)
        set_lr(opt, lr_at(step, sc.steps, sc.optim))
        pixel, inv = ddp(views.to(d.device), masks.to(d.device), sc.visible_weight)
        loss = pixel + sc.invariance_weight * inv
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), sc.optim.grad_clip)
        opt.step()
        return {"loss": loss.item(), "pixel_loss": pixel.item(), "inv_loss": inv.item()}

    def state_fn(step):
        return {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "rng": rng_state(), "vit": model.vit.state_dict()}

    train_loop(run, STAGE, sc.steps, start, step_fn, state_fn)
