"""evaluate() end to end with exact stand-ins: an identity tokenizer, an analytic generator and a
nearest-prototype classifier, on 50 real Fashion-MNIST test images.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_evaluation.py
"""
import json
import math
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from dmvae.data import FASHION_MNIST_CLASSES, load_fashion_mnist
from dmvae.evaluation import evaluate, plot_loss_curves, sweep_sampler

ROOT = "/usr/share/datasets/fashion-mnist"
NULL, MEAN, SCALE = 10, 0.1, 2.0  # a non-trivial normalisation, so un-normalising is checked
SIGMA = 0.05  # spread of the stand-in generator's data around each class prototype


class PixelShuffleTokenizer(nn.Module):
    """Exact identity through a [4, 14, 14] latent (space-to-depth and back)."""

    def encode(self, img):
        return F.pixel_unshuffle(img, 2)

    def decode(self, z):
        return F.pixel_shuffle(z, 2)


class PrototypeClassifier(nn.Module):
    """Nearest class mean on 7x7 average-pooled pixels; features are those 49 values."""

    feature_dim = 49

    def __init__(self, prototypes):  # [10, 1, 28, 28]
        super().__init__()
        p = self.features(prototypes)  # [10, 49]
        self.head = nn.Linear(49, 10)
        with torch.no_grad():  # -|f - p|^2 up to a per-row constant: 2 f.p - |p|^2
            self.head.weight.copy_(2 * p)
            self.head.bias.copy_(-(p**2).sum(1))

    def features(self, img):
        return F.adaptive_avg_pool2d(img, 7).flatten(1)

    def forward(self, img):
        return self.head(self.features(img))


def analytic_generator(targets):
    """Exact flow to N(target_y, SIGMA^2) in normalised space; the null class aims at the mean."""
    means = torch.cat([targets, targets.mean(0, keepdim=True)])  # [11, 4, 14, 14]

    def v(x, t, y):
        mu, tb = means[y], t.view(-1, 1, 1, 1)
        var = tb**2 * SIGMA**2 + (1 - tb) ** 2
        return mu + (tb * SIGMA**2 - (1 - tb)) * (x - tb * mu) / var
    return v


@pytest.fixture(scope="module")
def setup():
    images, labels = load_fashion_mnist(ROOT, "test", limit=1000)
    protos = torch.stack([images[labels == c].mean(0) for c in range(10)])
    tok = PixelShuffleTokenizer()
    targets = (tok.encode(protos) - MEAN) * SCALE
    return dict(tok=tok, gen=analytic_generator(targets), clf=PrototypeClassifier(protos),
                test=(images[:50], labels[:50]), train=images[500:800])


def test_evaluate_measures_and_writes_the_report(setup, tmp_path):
    lines = []
    m = evaluate(setup["tok"], setup["gen"], MEAN, SCALE, setup["clf"], setup["train"],
                 *setup["test"], FASHION_MNIST_CLASSES, NULL,
                 dict(method="heun", steps=8, cfg_scale=1.0, cfg_interval=(0.0, 1.0), shift=2.5),
                 str(tmp_path), "cpu", num_gen_per_class=12, batch_size=32, log=lines.append)
    assert m["recon_psnr"] == math.inf and m["recon_ssim"] == pytest.approx(1.0)
    assert m["rfid"] == pytest.approx(0.0, abs=1e-6)
    expected_acc = (setup["clf"](setup["test"][0]).argmax(1) == setup["test"][1]).float().mean()
    assert m["classifier_test_accuracy"] == pytest.approx(expected_acc.item())
    # generated images sit on the class prototypes, which the prototype classifier gets right
    assert m["gen_count"] == 120 and m["gen_accuracy"] > 0.95
    assert len(m["gen_accuracy_per_class"]) == 10
    assert math.isfinite(m["gfid"]) and m["gfid"] >= 0
    assert m["fid_floor_gen"] > 0 and m["fid_floor_recon"] > 0
    assert m["floor_train_counts"] == [120, 50] and m["latent_shape"] == [4, 14, 14]

    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["recon_psnr"] is None  # inf is not JSON
    assert on_disk["gfid"] == pytest.approx(m["gfid"])
    report = (tmp_path / "report.md").read_text()
    for needle in ("test split", "PSNR: **inf dB**", f"{m['gfid']:.3f}", "heun, 8 steps",
                   "philox4x32-10-box-muller", "Ankle boot"):
        assert needle in report, needle
    for png in ("samples_grid.png", "recon_grid.png"):
        with Image.open(tmp_path / png) as im:
            assert im.size[0] > 100 and im.size[1] > 100
    assert any("gfid" in line for line in lines)


def test_evaluate_adds_inception_space_fids_when_given_a_feature_network(setup, tmp_path):
    # stand-in for InceptionFeatures: the classifier's own features, so both FIDs must agree
    m = evaluate(setup["tok"], setup["gen"], MEAN, SCALE, setup["clf"], setup["train"],
                 *setup["test"], FASHION_MNIST_CLASSES, NULL,
                 dict(method="euler", steps=4, cfg_scale=1.0, cfg_interval=(0.0, 1.0), shift=1.0),
                 str(tmp_path), "cpu", num_gen_per_class=6, batch_size=32, log=lambda *_: None,
                 inception=setup["clf"].features)
    assert m["rfid_inception"] == pytest.approx(0.0, abs=1e-6)
    assert m["gfid_inception"] == pytest.approx(m["gfid"], rel=1e-6)
    assert f"gFID **{m['gfid_inception']:.3f}**" in (tmp_path / "report.md").read_text()


def test_evaluate_rejects_incomplete_sampler_settings(setup, tmp_path):
    with pytest.raises(ValueError, match="sampler_cfg lacks"):
        evaluate(setup["tok"], setup["gen"], MEAN, SCALE, setup["clf"], setup["train"],
                 *setup["test"], FASHION_MNIST_CLASSES, NULL, dict(method="heun", steps=4),
                 str(tmp_path), "cpu")


def test_sweep_scores_every_setting_and_wrong_normalisation_shows(setup):
    settings = [dict(method=m, steps=s, cfg_scale=w, cfg_interval=(0.0, 1.0), shift=2.5)
                for m, s, w in (("euler", 4, 1.0), ("heun", 8, 2.0))]
    rows = sweep_sampler(setup["tok"], setup["gen"], MEAN, SCALE, setup["clf"], setup["test"][0],
                         10, NULL, settings, "cpu", per_class=5, log=lambda s: None)
    assert [(r["method"], r["steps"]) for r in rows] == [("euler", 4), ("heun", 8)]
    assert all(r["gen_accuracy"] > 0.9 and math.isfinite(r["gfid"]) for r in rows)
    # un-normalising with the wrong mean must visibly hurt: the check is not vacuous
    bad = sweep_sampler(setup["tok"], setup["gen"], MEAN + 0.5, SCALE, setup["clf"],
                        setup["test"][0], 10, NULL, settings[:1], "cpu", per_class=5,
                        log=lambda s: None)
    assert bad[0]["gen_accuracy"] < 0.5 and bad[0]["gfid"] > 2 * rows[0]["gfid"]


def test_plot_loss_curves(tmp_path):
    for stage in ("tokenizer", "align"):
        with open(tmp_path / f"{stage}.jsonl", "w") as f:
            for step in range(0, 100, 10):
                f.write(json.dumps({"step": step, "loss": 1.0 / (step + 1), "dm_loss": 0.1}) + "\n")
    out = tmp_path / "loss.png"
    plot_loss_curves({s: str(tmp_path / f"{s}.jsonl") for s in ("tokenizer", "align", "gone")},
                     str(out))
    assert os.path.getsize(out) > 1000
    with pytest.raises(ValueError, match="no loss values"):
        plot_loss_curves({"gone": str(tmp_path / "gone.jsonl")}, str(tmp_path / "x.png"))


def test_sampler_pick_needs_the_accuracy_target_with_confidence_not_just_a_point_estimate():
    from dmvae.stages.eval import pick_sampler
    rows = [dict(cfg_scale=2.0, gen_accuracy=0.89, gfid=80.0, gen_count=100),   # bound 0.839
            dict(cfg_scale=3.0, gen_accuracy=0.94, gfid=90.0, gen_count=100),   # bound 0.901
            dict(cfg_scale=5.0, gen_accuracy=0.95, gfid=99.0, gen_count=100)]
    assert pick_sampler(rows, {"cfg_scale": None}) == {"cfg_scale": 3.0}
    # the same 0.89 over 1000 samples is sure enough: then the lower gFID wins
    rows[0]["gen_count"] = 1000
    assert pick_sampler(rows, {"cfg_scale": None}) == {"cfg_scale": 2.0}
    # nothing sure enough: the most accurate
    low = [dict(r, gen_accuracy=a) for r, a in zip(rows, (0.5, 0.7, 0.6))]
    assert pick_sampler(low, {"cfg_scale": None}) == {"cfg_scale": 3.0}
