"""The SSL encoder: a plain ViT whose parameter names follow DINOv2, plus the DINOv2 loader.

Small runs train it themselves (stages/ssl.py); paper-scale runs load DINOv2 weights from a
local file with load_dinov2(). forward() returns patch-token features [N, L, D] after the final
norm; L = (image_size / patch_size)^2 is the latent grid.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import PipelineError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the RGB statistics DINOv2 standardises its input with
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------

def attention(q, k, v):
    """Softmax attention written out (no F.scaled_dot_product_attention: torch 1.13 lacks it
    and the explicit form exports to ONNX on every version). q, k, v: [N, H, L, Dh]."""
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    return scores.softmax(dim=-1) @ v


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        n, l, d = x.shape
        qkv = self.qkv(x).reshape(n, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = attention(qkv[0], qkv[1], qkv[2])          # [N, H, L, Dh]
        return self.proj(out.transpose(1, 2).reshape(n, l, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim, init):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x):
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, ls_init):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn, self.mlp = Attention(dim, heads), Mlp(dim, int(dim * mlp_ratio))
        self.ls1, self.ls2 = LayerScale(dim, ls_init), LayerScale(dim, ls_init)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_ch, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, patch, stride=patch)

    def forward(self, x):                                 # [N, C, H, W] -> [N, L, D]
        return self.proj(x).flatten(2).transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

class ViT(nn.Module):
    """cls + optional register tokens + patch tokens; learned absolute position embedding."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.grid = cfg.image_size // cfg.patch_size
        d = cfg.dim
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_channels, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid ** 2, d) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, d))   # masked-patch modelling (ssl stage)
        self.num_reg = cfg.num_register_tokens
        if self.num_reg:
            self.register_tokens = nn.Parameter(torch.zeros(1, self.num_reg, d))
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio, cfg.layerscale_init)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        nn.init.normal_(self.cls_token, std=0.02)
        self.apply(_init_linear)
        # DINOv2 was trained on ImageNet-standardised RGB; our pixels are in [-1, 1]. Grey input
        # meets a kernel summed over RGB (convert_dinov2_state_dict), so it gets the mean stats.
        # Not persistent: checkpoints and the names DINOv2 files use stay as they are.
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        if cfg.in_channels == 1:
            mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
        self.pretrained_input = cfg.weights is not None and cfg.in_channels in (1, 3)
        self.register_buffer("input_mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_std", std.view(1, -1, 1, 1), persistent=False)

    def embed(self, x):
        """[N, C, H, W] in [-1, 1] -> patch tokens [N, L, D], standardised first for DINOv2."""
        if self.pretrained_input:
            x = ((x + 1) / 2 - self.input_mean) / self.input_std
        return self.patch_embed(x)

    def forward(self, x, mask=None, return_cls=False):
        """x: [N, C, H, W] in [-1, 1]; mask: optional bool [N, L], True = replace by mask_token.
        Returns patch features [N, L, D] (and the cls feature [N, D] when return_cls)."""
        tok = self.embed(x)                                    # [N, L, D]
        if mask is not None:
            tok = torch.where(mask.unsqueeze(-1), self.mask_token.to(tok.dtype), tok)
        cls = self.cls_token.expand(tok.shape[0], -1, -1)
        h = torch.cat([cls, tok], dim=1) + self.pos_embed
        if self.num_reg:  # registers carry no position, as in DINOv2
            reg = self.register_tokens.expand(tok.shape[0], -1, -1)
            h = torch.cat([h[:, :1], reg, h[:, 1:]], dim=1)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        patches = h[:, 1 + self.num_reg:]
        return (patches, h[:, 0]) if return_cls else patches

    def intermediate(self, x, layers):
        """Normalised token features after the given block indices (perceptual loss)."""
        tok = self.embed(x)
        h = torch.cat([self.cls_token.expand(tok.shape[0], -1, -1), tok], 1) + self.pos_embed
        if self.num_reg:
            h = torch.cat([h[:, :1], self.register_tokens.expand(h.shape[0], -1, -1), h[:, 1:]], 1)
        feats = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in layers:
                feats.append(F.layer_norm(h, h.shape[-1:]))
        return feats


def _init_linear(m):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------
# DINOv2 weights from a local file
# ---------------------------------------------------------------------------------------------

_STRIP_PREFIXES = ("module.", "backbone.", "teacher.backbone.", "student.backbone.", "encoder.")


def convert_dinov2_state_dict(sd, model):
    """DINOv2 state dict -> one that loads into `model` (a ViT).

    Handles wrapper prefixes, pos_embed resampling to our grid, patch kernel resizing
    (DINOv2 uses 14, the paper's tokenizer 16), RGB -> grey, and keys we do not use.
    """
    out = {}
    for key, value in sd.items():
        for prefix in _STRIP_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    target = model.state_dict()
    w = out.get("patch_embed.proj.weight")
    if w is None or "pos_embed" not in out:
        raise PipelineError("weights_invalid", "not a DINOv2 ViT state dict: missing "
                            "patch_embed.proj.weight or pos_embed")
    if w.shape[0] != target["patch_embed.proj.weight"].shape[0]:
        raise PipelineError("weights_invalid", f"DINOv2 width {w.shape[0]} != ssl.model.dim "
                            f"{target['patch_embed.proj.weight'].shape[0]}; fix the config")
    want = target["patch_embed.proj.weight"].shape
    if w.shape[2:] != want[2:]:  # resample the kernel; rescale to keep response magnitude
        scale = (w.shape[2] * w.shape[3]) / (want[2] * want[3])
        w = F.interpolate(w.float(), size=want[2:], mode="bicubic", align_corners=False) * scale
    if w.shape[1] != want[1]:
        if want[1] != 1:
            raise PipelineError("weights_invalid", f"cannot map {w.shape[1]} input channels "
                                f"to {want[1]}")
        w = w.sum(dim=1, keepdim=True)  # grey input = equal R, G and B
    out["patch_embed.proj.weight"] = w
    out["pos_embed"] = resample_pos_embed(out["pos_embed"], model.grid)
    unused = sorted(k for k in out if k not in target)
    missing = sorted(k for k in target if k not in out)
    missing = [k for k in missing if k != "mask_token"]  # only the SSL pretext needs it
    if missing:
        raise PipelineError("weights_invalid", f"DINOv2 file lacks {missing[:5]}"
                            f"{'...' if len(missing) > 5 else ''}: depth/registers mismatch "
                            "with ssl.model?")
    for k in unused:
        del out[k]
    for k, v in out.items():
        if v.shape != target[k].shape:
            raise PipelineError("weights_invalid", f"{k}: file shape {tuple(v.shape)} != model "
                                f"shape {tuple(target[k].shape)}; check ssl.model (dim/heads/"
                                "mlp_ratio/num_register_tokens)")
    return out, unused


def resample_pos_embed(pos, grid):
    """[1, 1 + g*g, D] -> [1, 1 + grid*grid, D], bicubic on the patch part."""
    cls, patch = pos[:, :1], pos[:, 1:]
    g = int(math.isqrt(patch.shape[1]))
    if g * g != patch.shape[1]:
        raise PipelineError("weights_invalid", f"pos_embed has {patch.shape[1]} patch entries, "
                            "not a square grid")
    if g != grid:
        p = patch.reshape(1, g, g, -1).permute(0, 3, 1, 2).float()
        p = F.interpolate(p, size=(grid, grid), mode="bicubic", align_corners=False)
        patch = p.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
    return torch.cat([cls, patch], dim=1)


def load_dinov2(model, path, log=print):
    """Load DINOv2 weights from a local .pth file into `model`; nothing is downloaded."""
    try:
        sd = torch.load(path, map_location="cpu")
    except FileNotFoundError:
        raise PipelineError("weights_missing", f"DINOv2 weights {path} not found; set "
                            "ssl.model.weights to a local state-dict file") from None
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    converted, unused = convert_dinov2_state_dict(sd, model)
    model.load_state_dict(converted, strict=False)
    log(f"loaded DINOv2 weights from {path} ({len(converted)} tensors; ignored {unused})")
    return model
