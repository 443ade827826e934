"""LightningDiT-style class-conditional flow-matching transformer on the latent grid.

Patch size 1 (one token per latent cell), RMSNorm, SwiGLU, 2-D rotary position embedding,
adaLN-Zero conditioning on (t, y). Label id num_classes is the null class for CFG.
One class serves as reference model, DM teacher and student, and the shipped generator:

    v = dit(x [N, Cz, g, g], t [N] in [0, 1], y [N] int64) -> [N, Cz, g, g]
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .vit import attention


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6, affine=True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x):
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * self.weight if self.weight is not None else x


def rope_2d_tables(grid, head_dim, theta):
    """cos/sin [L, head_dim] for 2-D RoPE: the first half of each head rotates with the row,
    the second half with the column (each half in the rotate-half layout)."""
    quarter = head_dim // 4
    freqs = 1.0 / theta ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    ang_r = rows.reshape(-1, 1).double() * freqs          # [L, quarter]
    ang_c = cols.reshape(-1, 1).double() * freqs
    ang = torch.cat([ang_r, ang_r, ang_c, ang_c], dim=-1)  # [L, head_dim]
    return ang.cos().float(), ang.sin().float()


def apply_rope(x, cos, sin):
    """x [N, H, L, Dh]; rotate-half inside each of the two (row, column) halves."""
    d = x.shape[-1]
    q = d // 4
    a, b, c, e = x[..., :q], x[..., q:2 * q], x[..., 2 * q:3 * q], x[..., 3 * q:]
    rotated = torch.cat([-b, a, -e, c], dim=-1)
    return x * cos + rotated * sin


def timestep_embedding(t, dim, max_period=10000.0):
    """t [N] in [0, 1] -> sinusoidal [N, dim] (t scaled by 1000 like diffusion timesteps)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------

class SwiGLU(nn.Module):
    def __init__(self, dim, mlp_ratio):
        super().__init__()
        hidden = int(2 * mlp_ratio * dim / 3)
        hidden = (hidden + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x):
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class RopeAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // heads)   # qk-norm, as LightningDiT: keeps logits tame
        self.k_norm = RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, cos, sin):
        n, l, d = x.shape
        qkv = self.qkv(x).reshape(n, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q = apply_rope(self.q_norm(qkv[0]), cos, sin)
        k = apply_rope(self.k_norm(qkv[1]), cos, sin)
        out = attention(q, k, qkv[2])                     # [N, H, L, Dh]
        return self.proj(out.transpose(1, 2).reshape(n, l, d))


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = RMSNorm(dim, affine=False)
        self.attn = RopeAttention(dim, heads)
        self.norm2 = RMSNorm(dim, affine=False)
        self.mlp = SwiGLU(dim, mlp_ratio)
        self.ada = nn.Linear(dim, 6 * dim)

    def forward(self, x, c, cos, sin):
        s1, g1, a1, s2, g2, a2 = self.ada(F.silu(c)).chunk(6, dim=-1)
        x = x + a1.unsqueeze(1) * self.attn(modulate(self.norm1(x), s1, g1), cos, sin)
        return x + a2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), s2, g2))


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

class DiT(nn.Module):
    def __init__(self, cfg, latent_shape, num_classes):
        super().__init__()
        self.cfg, self.num_classes = cfg, num_classes
        cz, g, g2 = latent_shape
        assert g == g2, f"square latent grids only, got {latent_shape}"
        self.latent_shape = tuple(latent_shape)
        d = cfg.dim
        self.x_embed = nn.Linear(cz, d)
        self.t_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.y_embed = nn.Embedding(num_classes + 1, d)   # + null class for CFG
        self.blocks = nn.ModuleList(DiTBlock(d, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.depth))
        self.norm_out = RMSNorm(d, affine=False)
        self.ada_out = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, cz)
        cos, sin = rope_2d_tables(g, d // cfg.heads, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init()

    def _init(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.y_embed.weight, std=0.02)
        for block in self.blocks:  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(block.ada.weight)
            nn.init.zeros_(block.ada.bias)
        for m in (self.ada_out, self.out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x, t, y):
        """x [N, Cz, g, g] normalised latent at time t [N] (0 = noise, 1 = data); y [N] int64
        in 0..num_classes. Returns the velocity [N, Cz, g, g]."""
        n, cz, g, _ = x.shape
        h = self.x_embed(x.flatten(2).transpose(1, 2))        # [N, L, D]
        c = self.t_embed(timestep_embedding(t, 256)) + self.y_embed(y)   # [N, D]
        for block in self.blocks:
            h = block(h, c, self.rope_cos, self.rope_sin)
        shift, scale = self.ada_out(F.silu(c)).chunk(2, dim=-1)
        h = self.out(modulate(self.norm_out(h), shift, scale))  # [N, L, Cz]
        return h.transpose(1, 2).reshape(n, cz, g, g)
