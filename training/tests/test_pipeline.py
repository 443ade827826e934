"""Every stage end to end at toy size on CPU, then the exported folder against the contract.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_pipeline.py
"""
import json
import os

import numpy as np

from dmvae.export import ort_run, validate_model_folder


def test_all_stages_run_and_export_a_valid_model_folder(tiny_run):
    assert tiny_run["code"] == 0
    folder = tiny_run["model"]
    m = validate_model_folder(str(folder))
    assert m["latent"]["shape"] == [4, 7, 7]
    assert [c["name"] for c in m["classes"]][:2] == ["T-shirt/top", "Trouser"]
    assert m["null_class"] == 10
    for key in ("recon_psnr", "gen_accuracy", "gfid", "fid_floor_gen", "onnx_parity_max_abs_error"):
        assert key in m["metrics"], key
    for name in ("report.md", "metrics.json", "samples_grid.png", "recon_grid.png",
                 "loss_curves.png"):
        assert (folder / "report" / name).exists(), name
    run = tiny_run["run"]
    for stage in ("ssl", "tokenizer", "reference", "align", "generator"):
        assert (run / "metrics" / f"{stage}.jsonl").exists(), stage
    assert json.loads((run / "config.json").read_text())["ssl"]["model"]["dim"] == 16
    assert tiny_run["seconds"] < 90, "the tiny run should stay well under the test budget"


def test_golden_sampling_latents_follow_from_the_noise_through_onnx(tiny_run):
    """Replays the first golden sampling case with the ONNX generator (Euler/Heun loop in
    numpy, as the service will), which must land on the stored PyTorch latent."""
    assert tiny_run["code"] == 0
    folder = tiny_run["model"]
    m = json.loads((folder / "manifest.json").read_text())
    golden = json.loads((folder / "golden" / "golden.json").read_text())
    case = golden["sampling"][0]
    x = np.load(folder / "golden" / case["noise"]).astype(np.float32)
    n, steps, s = x.shape[0], case["steps"], case["shift"]
    rest = 1.0 - np.arange(steps + 1) / steps
    grid = 1.0 - s * rest / (1.0 + (s - 1.0) * rest)
    y = np.full(n, case["class"], dtype=np.int64)
    null = np.full(n, m["null_class"], dtype=np.int64)

    def v(xx, t):
        lo, hi = case["cfg_interval"]
        tt = np.full(n, t, dtype=np.float32)
        if case["cfg_scale"] == 1.0 or not lo <= t <= hi:
            return ort_run(str(folder / "generator.onnx"), {"x": xx, "t": tt, "y": y})["v"]
        out = ort_run(str(folder / "generator.onnx"), {"x": np.concatenate([xx, xx]),
                      "t": np.concatenate([tt, tt]), "y": np.concatenate([y, null])})["v"]
        return out[n:] + case["cfg_scale"] * (out[:n] - out[n:])

    for i in range(steps):
        h = np.float32(grid[i + 1] - grid[i])
        d1 = v(x, grid[i])
        if case["method"] == "euler":
            x = x + h * d1
        else:
            x = x + h * (d1 + v(x + h * d1, grid[i + 1])) / 2
    z = x / m["latent"]["scale"] + m["latent"]["mean"]
    want = np.load(folder / "golden" / case["latent"])
    assert np.abs(z - want).max() <= golden["tolerance"]["sampling_atol"]


def _last_metrics(run_dir, stage):
    with open(run_dir / "metrics" / f"{stage}.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_the_tokenizer_trains_with_the_patchgan_and_adaptive_weight(tiny_args, tmp_path):
    from dmvae.cli import main
    args = tiny_args + ["--set", "tokenizer.gan_start=1", "--set", "tokenizer.steps=3"]
    assert main(["ssl", *args]) == 0 and main(["tokenizer", *args]) == 0
    rows = _last_metrics(tmp_path / "run", "tokenizer")
    assert "d_loss" not in rows[0]                     # step 1: before gan_start
    assert all(k in rows[-1] for k in ("d_loss", "g_loss", "gan_w"))
    assert rows[-1]["gan_w"] > 0


def test_a_gaussian_reference_drives_the_align_stage(tiny_args, tmp_path):
    from dmvae.cli import main
    args = tiny_args + ["--set", "reference.kind=gaussian", "--set", "generator.init=scratch"]
    for stage in ("ssl", "tokenizer", "reference", "align"):
        assert main([stage, *args]) == 0, stage
    assert not (tmp_path / "run" / "metrics" / "reference.jsonl").exists()  # nothing trained
    rows = _last_metrics(tmp_path / "run", "align")
    assert any("dm_loss" in r for r in rows) and all("student_loss" in r for r in rows)
