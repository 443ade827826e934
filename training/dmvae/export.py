"""ONNX export, ONNX Runtime parity, golden tensors and the manifest of docs/model-format.md.

The stage (stages/export.py) strings these together; tests call them one by one.
"""
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import torch

from .errors import PipelineError

GRAPH_IO = {  # contract names: graph -> (inputs, outputs)
    "encoder": (["image"], ["latent"]),
    "decoder": (["latent"], ["image"]),
    "generator": (["x", "t", "y"], ["v"]),
    "classifier": (["image"], ["logits"]),
}
REQUIRED_MANIFEST_KEYS = ("schema_version", "name", "description", "created", "image", "latent",
                          "classes", "null_class", "sampler", "noise", "graphs", "files",
                          "golden", "training", "metrics")
TOLERANCE = {"atol": 1e-4, "rtol": 1e-3, "sampling_atol": 1e-3}
NODE_RUNNER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "tools", "ort_run.js")


# ---------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------

def export_onnx(module, example_inputs, graph, path, opset=17):
    """torch.onnx.export with the contract's names and a dynamic batch axis on every tensor."""
    inputs, outputs = GRAPH_IO[graph]
    axes = {name: {0: "N"} for name in inputs + outputs}
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: same graphs on 1.13 and 2.x (>= 2.5)
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, tuple(example_inputs), path, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes, opset_version=opset,
                          do_constant_folding=True, **kwargs)
    import onnx
    onnx.checker.check_model(onnx.load(path))


def ort_run(model_path, feeds):
    """Run an ONNX graph on numpy feeds -> {output name: array}: Python onnxruntime when
    importable, else onnxruntime-node through tools/ort_run.js."""
    try:
        import onnxruntime as ort
    except ImportError:
        return _ort_run_node(model_path, feeds)
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def _ort_run_node(model_path, feeds):
    if shutil.which("node") is None:
        raise PipelineError("ort_unavailable", "no Python onnxruntime and no `node` on PATH: "
                            "install Node 20 and run `npm ci` in the repository root")
    with tempfile.TemporaryDirectory() as tmp:
        args = []
        for name, arr in feeds.items():
            p = os.path.join(tmp, f"in_{name}.npy")
            np.save(p, np.ascontiguousarray(arr))
            args.append(f"{name}={p}")
        out_dir = os.path.join(tmp, "out")
        proc = subprocess.run(["node", NODE_RUNNER, model_path, out_dir, *args],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise PipelineError("ort_failed", f"onnxruntime-node failed on {model_path}: "
                                f"{proc.stderr.strip() or proc.stdout.strip()} (is "
                                "onnxruntime-node installed? run `npm ci` in the repo root)")
        return {f[:-4]: np.load(os.path.join(out_dir, f)) for f in os.listdir(out_dir)}


def check_parity(graph, expected, got, atol, rtol):
    """Fail loudly when ONNX Runtime and PyTorch disagree beyond atol + rtol * |expected|."""
    report = {}
    for name, want in expected.items():
        if name not in got:
            raise PipelineError("parity_failed", f"{graph}: ONNX Runtime gave no output {name!r}")
        have = got[name]
        if have.shape != want.shape:
            raise PipelineError("parity_failed", f"{graph}.{name}: shape {have.shape} from "
                                f"ONNX Runtime, {want.shape} from PyTorch")
        err = np.abs(have.astype(np.float64) - want.astype(np.float64))
        bad = err > atol + rtol * np.abs(want)
        report[name] = float(err.max()) if err.size else 0.0
        if bad.any():
            raise PipelineError("parity_failed", f"{graph}.{name}: {int(bad.sum())} of {bad.size} "
                                f"values differ beyond atol {atol} / rtol {rtol} (max abs "
                                f"error {err.max():.3g}); the export is not faithful")
    return report


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_table(folder):
    """Every file under folder except manifest.json -> {relative path: {sha256, bytes}}."""
    table = {}
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            if rel != "manifest.json":
                table[rel] = {"sha256": sha256_file(path), "bytes": os.path.getsize(path)}
    return dict(sorted(table.items()))


def validate_model_folder(folder, name=None):
    """Check a model folder against docs/model-format.md; returns the manifest or raises.
    name: the model id expected (default: the folder's name)."""
    path = os.path.join(folder, "manifest.json")
    if not os.path.exists(path):
        raise PipelineError("manifest_invalid", f"{path} missing")
    with open(path) as f:
        m = json.load(f)
    problems = [f"missing key {k!r}" for k in REQUIRED_MANIFEST_KEYS if k not in m]
    if problems:
        raise PipelineError("manifest_invalid", f"{path}: " + "; ".join(problems))
    if m["schema_version"] != 1:
        problems.append(f"schema_version {m['schema_version']} != 1")
    if m["name"] != (name or os.path.basename(os.path.normpath(folder))):
        problems.append(f"name {m['name']!r} is not the folder name")
    ids = [c.get("id") for c in m["classes"]]
    if ids != list(range(len(ids))) or not all(isinstance(c.get("name"), str) for c in m["classes"]):
        problems.append("classes must be [{id: 0..K-1, name}] in order")
    if m["null_class"] != len(ids):
        problems.append(f"null_class {m['null_class']} != number of classes {len(ids)}")
    lat = m["latent"]
    if not (isinstance(lat.get("scale"), (int, float)) and lat["scale"] > 0
            and isinstance(lat.get("mean"), (int, float)) and len(lat.get("shape", [])) == 3):
        problems.append("latent needs shape [Cz, h, w], numeric mean and positive scale")
    s = m["sampler"]
    if s.get("method") not in ("euler", "heun") or not isinstance(s.get("steps"), int):
        problems.append("sampler needs method euler|heun and integer steps")
    for key in ("cfg_scale", "cfg_interval", "shift"):
        if key not in s:
            problems.append(f"sampler lacks {key}")
    if m["noise"] != {"generator": "philox4x32-10-box-muller", "version": 1}:
        problems.append(f"noise spec {m['noise']} is not philox4x32-10-box-muller v1")
    for graph in GRAPH_IO:
        if m["graphs"].get(graph, {}).get("file") is None:
            problems.append(f"graphs.{graph}.file missing")
    actual = file_table(folder)
    if set(actual) != set(m["files"]):
        problems.append(f"files table lists {sorted(set(m['files']) ^ set(actual))} wrongly "
                        "(must be every file but manifest.json)")
    for rel, info in m["files"].items():
        if rel in actual and actual[rel] != info:
            problems.append(f"{rel}: sha256/bytes do not match the file")
    if m["golden"] not in actual:
        problems.append(f"golden {m['golden']} not in the folder")
    if problems:
        raise PipelineError("manifest_invalid", f"{path}: " + "; ".join(problems))
    return m
