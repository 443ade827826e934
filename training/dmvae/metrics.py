"""Image and distribution metrics: PSNR, SSIM, feature statistics, Frechet distance, Inception.

Images are [N, C, H, W] in [-1, 1] everywhere (the model range). Results are python floats.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import linalg


def _as_tensor(x):
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).detach().double().cpu()


def _check_pair(a, b):
    a, b = _as_tensor(a), _as_tensor(b)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"need two [N, C, H, W] batches of one shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    return a, b


def psnr_per_image(a, b, data_range=2.0):
    """[N] PSNR in dB of each image pair (inf where identical); data range 2 for [-1, 1]."""
    a, b = _check_pair(a, b)
    mse = ((a - b) ** 2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)  # mse = 0 -> inf, on purpose


def psnr(a, b, data_range=2.0):
    """Mean over images of per-image PSNR (not PSNR of the mean error)."""
    return psnr_per_image(a, b, data_range).mean().item()


def _gaussian_window(size=11, sigma=1.5):
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(r**2) / (2 * sigma**2))
    w = w / w.sum()
    return w[:, None] * w[None, :]  # [size, size], sums to 1


def ssim_per_image(a, b, window=11, sigma=1.5):
    """[N] SSIM (Wang et al. 2004) on the [0, 1] scale, mean over channels and valid windows.

    Gaussian window 11 / sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1; 'valid' filtering
    like the original MATLAB code, so images must be at least window x window.
    """
    a, b = _check_pair(a, b)
    a, b = (a + 1) / 2, (b + 1) / 2
    n, c, h, w = a.shape
    if min(h, w) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window}, got {h}x{w}")
    kernel = _gaussian_window(window, sigma).expand(c, 1, window, window).contiguous()
    blur = lambda x: F.conv2d(x, kernel, groups=c)  # noqa: E731 - depthwise, per channel
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(dim=1)


def ssim(a, b, window=11, sigma=1.5):
    return ssim_per_image(a, b, window, sigma).mean().item()


# ---- distributions of features ----------------------------------------------------------------

def feature_stats(features):
    """features [N, D] -> (mean [D], covariance [D, D]) in float64; N >= 2."""
    f = np.asarray(features.detach().cpu() if torch.is_tensor(features) else features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, D], got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    sqrtm of a product of near-singular covariances (fewer samples than dimensions) can come
    back non-finite or with imaginary parts; then retry with eps on the diagonals, as the usual
    FID code does, and keep the real part. Tiny negative results from rounding become 0.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: means {mu1.shape}/{mu2.shape}, "
                         f"covariances {s1.shape}/{s2.shape}")
    root, _ = linalg.sqrtm(s1 @ s2, disp=False)
    bad_imag = np.iscomplexobj(root) and np.abs(root.imag).max() > 1e-3 * max(1.0, np.abs(root).max())
    if not np.isfinite(root).all() or bad_imag:
        jitter = eps * np.eye(s1.shape[0])
        root, _ = linalg.sqrtm((s1 + jitter) @ (s2 + jitter), disp=False)
    root = np.real(root)
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(root)
    return float(max(value, 0.0))


def fid_from_features(feats_a, feats_b):
    return frechet_distance(*feature_stats(feats_a), *feature_stats(feats_b))


# ---- Inception features (only from a local weight file) ---------------------------------------

class InceptionFeatures(nn.Module):
    """2048-d pool features of torchvision's inception_v3, from a state dict on disk.

    Never downloads: give the path of a torchvision inception_v3 state dict (.pth). Note these
    are torchvision's ImageNet weights, not the TF "pt_inception-2015-12-05" graph of published
    FID numbers, so values are comparable only with each other.
    """

    def __init__(self, weights_path):
        super().__init__()
        import torchvision

        if not weights_path or not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"Inception weights not found at {weights_path!r}: pass the path of a local "
                "torchvision inception_v3 state dict (nothing is downloaded)")
        # transform_input=False: we feed [-1, 1] pixels, the range these weights were made for
        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                              transform_input=False)
        state = torch.load(weights_path, map_location="cpu")
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if isinstance(state, dict):  # the classifier head goes (pool features are used), and
            # with it the 1008-class fc of pytorch-fid's pt_inception-2015-12-05 file
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            net.load_state_dict(state, strict=False)
            missing = [k for k in net.state_dict()
                       if k not in state and "AuxLogits" not in k and not k.startswith("fc.")]
        except (RuntimeError, AttributeError, TypeError) as err:
            raise ValueError(f"{weights_path} is not an inception_v3 state dict: {err}") from err
        if missing:
            raise ValueError(f"{weights_path} lacks {len(missing)} inception_v3 tensors, "
                             f"e.g. {missing[:3]}")
        net.fc = nn.Identity()
        self.net = net.eval()

    @torch.no_grad()
    def forward(self, images):
        """images [N, 1 or 3, H, W] in [-1, 1] -> [N, 2048]."""
        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net.eval()(x)
