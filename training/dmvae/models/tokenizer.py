"""The DMVAE tokenizer: SSL ViT -> per-token MLP bottleneck -> latent grid -> conv decoder.

    image [N, C, H, W] --ViT--> tokens [N, L, D] --MLP--> z [N, Cz, g, g] --decoder--> image
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .vit import ViT


class Bottleneck(nn.Module):
    """Per-token MLP (one hidden layer, SiLU) from encoder width D down to Cz."""

    def __init__(self, dim, hidden, latent_channels):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, latent_channels)

    def forward(self, tokens, grid):                       # [N, L, D] -> [N, Cz, g, g]
        z = self.fc2(F.silu(self.fc1(tokens)))
        return z.transpose(1, 2).reshape(z.shape[0], -1, grid, grid)


# ---------------------------------------------------------------------------------------------
# Decoder (SD/FLUX autoencoder style)
# ---------------------------------------------------------------------------------------------

class ResBlock(nn.Module):
    def __init__(self, c_in, c_out, groups):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Decoder(nn.Module):
    """z [N, Cz, g, g] -> image [N, C, g * 2^ups, g * 2^ups].

    Levels run coarse to fine with base_channels * ch_mult[-1 - j] channels; level j ends with
    a x2 upsampling while j < ups, so ups may equal len(ch_mult) (the paper's 16 -> 256 with
    four levels upsamples after every level)."""

    def __init__(self, cfg, latent_channels, out_channels, ups):
        super().__init__()
        if ups > len(cfg.ch_mult):
            raise ValueError(f"decoder needs {ups} upsamplings but has {len(cfg.ch_mult)} levels")
        chans = [cfg.base_channels * m for m in reversed(cfg.ch_mult)]
        g = cfg.groups
        self.conv_in = nn.Conv2d(latent_channels, chans[0], 3, padding=1)
        self.mid = nn.Sequential(ResBlock(chans[0], chans[0], g), ResBlock(chans[0], chans[0], g))
        levels, c = [], chans[0]
        for j, c_out in enumerate(chans):
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(c, c_out, g))
                c = c_out
            if j < ups:
                blocks.append(Upsample(c))
            levels.append(nn.Sequential(*blocks))
        self.levels = nn.Sequential(*levels)
        self.norm_out = nn.GroupNorm(g, c)
        self.conv_out = nn.Conv2d(c, out_channels, 3, padding=1)

    @property
    def last_layer(self):
        """The weight the PatchGAN adaptive weight compares gradient norms on."""
        return self.conv_out.weight

    def forward(self, z):
        h = self.levels(self.mid(self.conv_in(z)))
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

class Tokenizer(nn.Module):
    """encode(image) -> raw latent; decode(latent) -> image; forward(image) -> (recon, z)."""

    def __init__(self, vit_cfg, tok_cfg):
        super().__init__()
        self.encoder = ViT(vit_cfg)
        self.grid = self.encoder.grid
        self.bottleneck = Bottleneck(vit_cfg.dim, tok_cfg.bottleneck_hidden,
                                     tok_cfg.latent_channels)
        ups = int(round(math.log2(vit_cfg.image_size / self.grid)))
        self.decoder = Decoder(tok_cfg.decoder, tok_cfg.latent_channels, vit_cfg.in_channels, ups)
        self.latent_shape = (tok_cfg.latent_channels, self.grid, self.grid)

    def encode(self, image):                              # [N, C, H, W] -> [N, Cz, g, g]
        return self.bottleneck(self.encoder(image), self.grid)

    def decode(self, z):                                  # [N, Cz, g, g] -> [N, C, H, W]
        return self.decoder(z)

    def forward(self, image):
        z = self.encode(image)
        return self.decode(z), z


class EncoderGraph(nn.Module):
    """ONNX wrapper: image -> latent."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, image):
        return self.tokenizer.encode(image)


class DecoderGraph(nn.Module):
    """ONNX wrapper: latent -> image."""

    def __init__(self, tokenizer):
        super().__init__()
        self.decoder = tokenizer.decoder

    def forward(self, latent):
        return self.decoder(latent)
