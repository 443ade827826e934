"""Export: ONNX Runtime must agree with PyTorch, and manifests are checked file by file.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_export.py
"""
import json
import shutil

import numpy as np
import pytest
import torch

from dmvae.config import DiTConfig
from dmvae.errors import PipelineError
from dmvae.export import check_parity, export_onnx, ort_run, validate_model_folder
from dmvae.models.dit import DiT


def test_an_exported_dit_matches_pytorch_in_onnx_runtime_for_any_batch(tmp_path):
    dit = DiT(DiTConfig(dim=16, depth=1, heads=2), (4, 7, 7), num_classes=10).eval()
    for p in dit.parameters():
        torch.nn.init.normal_(p, std=0.1)
    path = str(tmp_path / "generator.onnx")
    export_onnx(dit, [torch.zeros(2, 4, 7, 7), torch.full((2,), 0.5),
                      torch.zeros(2, dtype=torch.long)], "generator", path)
    for n in (1, 5):  # dynamic batch axis: other sizes than the export example
        x, t = torch.randn(n, 4, 7, 7), torch.rand(n)
        y = torch.randint(0, 11, (n,))
        with torch.no_grad():
            want = dit(x, t, y).numpy()
        got = ort_run(path, {"x": x.numpy(), "t": t.numpy(), "y": y.numpy()})
        assert check_parity("generator", {"v": want}, got, 1e-4, 1e-3)["v"] < 1e-4


def test_parity_check_fails_loudly_on_disagreement():
    want = {"v": np.zeros((2, 3), dtype=np.float32)}
    with pytest.raises(PipelineError, match="differ beyond"):
        check_parity("generator", want, {"v": want["v"] + 1e-2}, 1e-4, 1e-3)
    with pytest.raises(PipelineError, match="shape"):
        check_parity("generator", want, {"v": np.zeros((3, 2), np.float32)}, 1e-4, 1e-3)


def test_the_exported_folder_lists_every_file_with_its_sha256(tiny_run):
    m = validate_model_folder(str(tiny_run["model"]))
    assert set(m["files"]) >= {"encoder.onnx", "decoder.onnx", "generator.onnx",
                               "classifier.onnx", "golden/golden.json", "report/metrics.json"}
    assert "manifest.json" not in m["files"]
    for graph in ("encoder", "decoder", "generator", "classifier"):
        assert m["graphs"][graph]["file"] == f"{graph}.onnx"
    assert m["sampler"]["method"] in ("euler", "heun") and m["latent"]["scale"] > 0


def test_a_tampered_or_extra_file_fails_validation(tiny_run, tmp_path):
    folder = tmp_path / "fmnist-dmvae"
    shutil.copytree(tiny_run["model"], folder)
    with open(folder / "golden" / "generator_v.npy", "ab") as f:
        f.write(b"\0")
    with pytest.raises(PipelineError, match="generator_v.npy: sha256"):
        validate_model_folder(str(folder))
    shutil.rmtree(folder)
    shutil.copytree(tiny_run["model"], folder)
    (folder / "notes.txt").write_text("stray")
    with pytest.raises(PipelineError, match="notes.txt"):
        validate_model_folder(str(folder))


def test_a_manifest_missing_required_fields_fails_validation(tiny_run, tmp_path):
    folder = tmp_path / "fmnist-dmvae"
    shutil.copytree(tiny_run["model"], folder)
    m = json.loads((folder / "manifest.json").read_text())
    del m["latent"]
    m["null_class"] = 3
    (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(PipelineError, match="missing key 'latent'"):
        validate_model_folder(str(folder))


def test_golden_outputs_reproduce_in_onnx_runtime(tiny_run):
    folder = tiny_run["model"]
    golden = json.loads((folder / "golden" / "golden.json").read_text())
    tol = golden["tolerance"]
    for graph, outputs in (("encoder", ["latent"]), ("decoder", ["image"]), ("generator", ["v"])):
        files = golden[graph]
        feeds = {k: np.load(folder / "golden" / f) for k, f in files.items() if k not in outputs}
        want = {k: np.load(folder / "golden" / files[k]) for k in outputs}
        check_parity(graph, want, ort_run(str(folder / f"{graph}.onnx"), feeds),
                     tol["atol"], tol["rtol"])
