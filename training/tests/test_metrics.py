"""PSNR, SSIM, Frechet distance and the Inception hook, against values worked out by hand.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_metrics.py
"""
import math

import numpy as np
import pytest
import torch

from dmvae.metrics import (InceptionFeatures, feature_stats, fid_from_features, frechet_distance,
                           psnr, psnr_per_image, ssim, ssim_per_image)


def test_psnr_of_known_errors_is_averaged_per_image():
    a = torch.zeros(2, 1, 8, 8)
    b = a.clone()
    b[0] += 0.1  # mse 0.01 -> 10 log10(4 / 0.01)
    b[1] += 0.2  # mse 0.04
    per = psnr_per_image(a, b)
    expected = [10 * math.log10(4 / 0.01), 10 * math.log10(4 / 0.04)]
    assert per.tolist() == pytest.approx(expected, abs=1e-5)  # 0.1 in float32
    assert psnr(a, b) == pytest.approx(sum(expected) / 2)  # not the PSNR of the mean mse


def test_psnr_of_gaussian_noise_and_of_identical_images():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    b = a + 0.05 * torch.randn(a.shape, generator=g)
    assert psnr(a, b) == pytest.approx(10 * math.log10(4 / 0.05**2), abs=0.1)
    assert psnr(a, a) == math.inf


def _ssim_reference(a, b):
    """Plain loop SSIM of one single-channel image pair in [0, 1], for cross-checking."""
    r = np.arange(11) - 5
    w1 = np.exp(-(r**2) / (2 * 1.5**2))
    w = np.outer(w1, w1) / np.outer(w1, w1).sum()
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cv = (w * (pa - ma) * (pb - mb)).sum()
            c1, c2 = 0.01**2, 0.03**2
            vals.append((2 * ma * mb + c1) * (2 * cv + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_a_direct_computation():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 1, 20, 20, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    expected = _ssim_reference(((a[0, 0] + 1) / 2).double().numpy(), ((b[0, 0] + 1) / 2).double().numpy())
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_ssim_is_one_on_identical_and_falls_with_noise_multichannel():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(3, 3, 28, 28, generator=g) * 2 - 1
    assert ssim_per_image(a, a).tolist() == pytest.approx([1.0] * 3, abs=1e-12)
    scores = [ssim(a, (a + s * torch.randn(a.shape, generator=g)).clamp(-1, 1)) for s in (0.05, 0.2, 0.6)]
    assert 1 > scores[0] > scores[1] > scores[2]
    assert ssim(a, a.flip(0)) == pytest.approx(ssim(a.flip(0), a))  # symmetric


def test_metrics_reject_mismatched_batches():
    with pytest.raises(ValueError):
        psnr(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 6))
    cov = m @ m.T + np.eye(6)
    mu = rng.normal(size=6)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-6)
    shift = np.full(6, 0.5)
    assert frechet_distance(mu, cov, mu + shift, cov) == pytest.approx(1.5, abs=1e-6)
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    assert frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(2.0)


def test_fid_on_features_identical_shifted_and_rank_deficient():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(500, 16))
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-6)
    assert fid_from_features(f, f + 1.0) == pytest.approx(16.0, rel=1e-6)
    # fewer samples than dimensions: singular covariances, still finite and non-negative
    few_a, few_b = rng.normal(size=(20, 64)), rng.normal(size=(20, 64)) + 0.5
    value = fid_from_features(few_a, few_b)
    assert math.isfinite(value) and value > 64 * 0.25 * 0.5
    mu, cov = feature_stats(torch.from_numpy(f))
    assert mu.shape == (16,) and cov.shape == (16, 16)


def test_inception_requires_a_local_weight_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Inception weights not found"):
        InceptionFeatures(str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    torch.save({"conv.weight": torch.zeros(1)}, junk)
    with pytest.raises(ValueError, match="inception_v3"):
        InceptionFeatures(str(junk))


def test_inception_features_from_a_saved_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception.pth"
    torch.save(net.state_dict(), path)
    feats = InceptionFeatures(str(path))(torch.rand(2, 1, 28, 28) * 2 - 1)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()


def test_inception_from_pytorch_fid_file_with_its_1008_class_head(tmp_path):
    import torchvision

    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    state = net.state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path / "pt_inception.pth"
    torch.save(state, path)
    feats = InceptionFeatures(str(path))(torch.rand(1, 3, 32, 32) * 2 - 1)
    assert feats.shape == (1, 2048)
