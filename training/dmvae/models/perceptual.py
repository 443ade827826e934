"""Perceptual losses from features available locally: the frozen SSL encoder, or LPIPS (VGG16
backbone plus its linear heads) from a state-dict file given by path. Nothing is downloaded."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import PipelineError


class SSLPerceptual(nn.Module):
    """Mean squared distance between normalised token features of a frozen ViT, over a few
    blocks. The ViT is held outside the parameter tree so it is neither trained nor saved."""

    def __init__(self, vit, layers=None):
        super().__init__()
        self._vit = [vit]
        depth = len(vit.blocks)
        self.layers = set(layers if layers is not None else range(depth))

    def forward(self, recon, target):
        vit = self._vit[0]
        with torch.no_grad():
            ft = vit.intermediate(target, self.layers)
        fr = vit.intermediate(recon, self.layers)
        return sum(F.mse_loss(a, b) for a, b in zip(fr, ft)) / len(fr)


# ---------------------------------------------------------------------------------------------
# LPIPS (Zhang et al. 2018), VGG16 variant
# ---------------------------------------------------------------------------------------------

_VGG_SLICES = (4, 9, 16, 23, 30)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_VGG_CHANNELS = (64, 128, 256, 512, 512)


class LPIPS(nn.Module):
    """LPIPS-VGG. The weights file holds torchvision vgg16 `features.*` tensors and the heads
    `lin{0..4}.model.1.weight` (the layout of the lpips package's vgg.pth merged with VGG)."""

    def __init__(self, weights_path):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers
        # VGG16's conv trunk only: building vgg16() would also allocate its 120M-weight head
        self.features = make_layers(cfgs["D"])[:_VGG_SLICES[-1]]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _VGG_CHANNELS)
        self.register_buffer("shift", torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([.458, .448, .450]).view(1, 3, 1, 1))
        self._load(weights_path)
        self.requires_grad_(False).eval()

    def _load(self, path):
        if not path:
            raise PipelineError("weights_missing", "tokenizer.perceptual=lpips needs "
                                "tokenizer.lpips_weights (a local state-dict file)")
        try:
            sd = torch.load(path, map_location="cpu")
        except FileNotFoundError:
            raise PipelineError("weights_missing", f"LPIPS weights {path} not found") from None
        feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        lins = {}
        for i in range(5):
            key = f"lin{i}.model.1.weight"
            if key not in sd:
                raise PipelineError("weights_invalid", f"{path} lacks {key}")
            lins[f"{i}.weight"] = sd[key]
        kept = {k: v for k, v in feats.items() if int(k.split(".")[0]) < _VGG_SLICES[-1]}
        self.features.load_state_dict(kept)
        self.lins.load_state_dict(lins)

    def forward(self, a, b):
        """a, b [N, C, H, W] in [-1, 1] (grey is repeated to RGB) -> mean LPIPS distance."""
        if a.shape[1] == 1:
            a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
        a, b = (a - self.shift) / self.scale, (b - self.shift) / self.scale
        total, start = 0.0, 0
        for lin, end in zip(self.lins, _VGG_SLICES):
            for layer in self.features[start:end]:
                a, b = layer(a), layer(b)
            start = end
            na = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((na - nb) ** 2).mean(dim=(1, 2, 3))
        return total.mean()
