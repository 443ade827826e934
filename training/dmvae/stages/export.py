"""Stage 6, export: the model folder the service loads (docs/model-format.md).

    python -m dmvae export --config configs/fmnist.json --run-dir runs/fmnist \
        --out ../models/fmnist-dmvae

Writes the four ONNX graphs, golden tensors (PyTorch CPU float32 outputs on fixed inputs, plus
sampling runs from contract noise), checks every graph in ONNX Runtime against PyTorch and
fails on disagreement, copies the eval report, and writes manifest.json last. The folder is
built beside the target and swapped in only when complete.
"""
import datetime
import json
import os
import shutil

import numpy as np
import torch

from .. import data
from ..classifier import FashionClassifier
from ..config import to_dict
from ..errors import PipelineError
from ..export import (GRAPH_IO, TOLERANCE, check_parity, export_onnx, file_table, ort_run,
                      validate_model_folder)
from ..models.tokenizer import DecoderGraph, EncoderGraph
from ..noise import NOISE_GENERATOR, NOISE_VERSION, latent_noise
from ..runtime import load_checkpoint
from ..sampling import denormalize, sample
from .common import build_dit, load_tokenizer

STAGE = "export"


def load_models(run):
    tok = load_tokenizer(run, "align", STAGE).eval()
    gstate = run.require("generator", STAGE)
    gen = build_dit(run.cfg, run.cfg.generator.model, tok.latent_shape)
    gen.load_state_dict(gstate["ema"])
    estate = run.require("eval", STAGE)
    names = data.class_names(run.cfg)
    vc = run.cfg.ssl.model
    clf = FashionClassifier(len(names), vc.in_channels, vc.image_size)
    clf.load_state_dict(load_checkpoint(os.path.join(run.ckpt_dir, "classifier.pt"))["model"])
    return tok, gen.eval(), clf.eval(), gstate, estate, names


def golden_inputs(cfg, tok, n):
    """Fixed inputs: the first n test images, their latents, contract noise for x."""
    test_x, _ = data.stack(data.load_split(cfg, "test"), n)
    with torch.no_grad():
        latent = tok.encode(test_x)
    x = torch.from_numpy(latent_noise(20240, n, tok.latent_shape))
    t = torch.linspace(0.1, 0.9, n)
    y = torch.arange(n, dtype=torch.long) % (len(data.class_names(cfg)) + 1)
    y[-1] = len(data.class_names(cfg))  # one null-class row: the service uses it for CFG
    return test_x, latent, x, t, y


def write_golden(folder, cfg, tok, gen, mean, scale, null):
    """golden/*.npy + golden.json; returns {graph: {input name: array}} with outputs."""
    os.makedirs(os.path.join(folder, "golden"))
    ec = cfg.export
    image, latent, x, t, y = golden_inputs(cfg, tok, ec.golden_batch)
    with torch.no_grad():
        cases = {
            "encoder": ({"image": image}, {"latent": tok.encode(image)}),
            "decoder": ({"latent": latent}, {"image": tok.decode(latent)}),
            "generator": ({"x": x, "t": t, "y": y}, {"v": gen(x, t, y)}),
        }
    index = {}
    for graph, (ins, outs) in cases.items():
        index[graph] = {}
        for name, arr in {**ins, **outs}.items():
            fname = f"{graph}_{name}.npy"
            np.save(os.path.join(folder, "golden", fname), arr.numpy())
            index[graph][name] = fname
    index["sampling"] = []
    for i, case in enumerate(ec.golden_sampling):
        noise = latent_noise(case["seed"], case["count"], tok.latent_shape)
        xs = sample(gen, torch.from_numpy(noise), case["class"], null, case["steps"],
                    case["method"], case["cfg_scale"], tuple(case["cfg_interval"]), case["shift"])
        z = denormalize(xs, mean, scale)
        with torch.no_grad():
            img = tok.decode(z)
        entry = dict(case)
        for key, arr in (("noise", noise), ("latent", z.numpy()), ("image", img.numpy())):
            fname = f"sampling{i}_{key}.npy"
            np.save(os.path.join(folder, "golden", fname), np.asarray(arr, dtype=np.float32))
            entry[key] = fname
        index["sampling"].append(entry)
    index["tolerance"] = dict(TOLERANCE)
    with open(os.path.join(folder, "golden", "golden.json"), "w") as f:
        json.dump(index, f, indent=2)
    return {g: {**{k: v.numpy() for k, v in ins.items()}, "_out": {k: v.numpy()
            for k, v in outs.items()}} for g, (ins, outs) in cases.items()}


def run(run, out_dir):
    cfg, log = run.cfg, run.log
    if not run.dist.is_main:
        return
    if not out_dir:
        raise PipelineError("config_invalid", "export needs --out, e.g. --out ../models/fmnist-dmvae")
    tok, gen, clf, gstate, estate, names = load_models(run)
    mean, scale, null = gstate["latent_mean"], gstate["latent_scale"], len(names)
    out_dir = os.path.abspath(out_dir)
    name = os.path.basename(out_dir)
    staging = out_dir + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    vc = cfg.ssl.model
    img = torch.zeros(2, vc.in_channels, vc.image_size, vc.image_size)
    lat = torch.zeros(2, *tok.latent_shape)
    graphs = {"encoder": (EncoderGraph(tok), [img]), "decoder": (DecoderGraph(tok), [lat]),
              "generator": (gen, [lat, torch.full((2,), 0.5), torch.zeros(2, dtype=torch.long)]),
              "classifier": (clf, [img])}
    for graph, (module, example) in graphs.items():
        export_onnx(module, example, graph, os.path.join(staging, f"{graph}.onnx"), cfg.export.opset)
        log.info(f"[{STAGE}] exported {graph}.onnx")

    golden = write_golden(staging, cfg, tok, gen, mean, scale, null)
    test_x, _ = data.stack(data.load_split(cfg, "test"), 3)
    with torch.no_grad():
        golden["classifier"] = {"image": test_x.numpy(), "_out": {"logits": clf(test_x).numpy()}}
    parity = {}
    for graph, case in golden.items():
        feeds = {k: v for k, v in case.items() if k != "_out"}
        parity[graph] = check_parity(graph, case["_out"], ort_run(
            os.path.join(staging, f"{graph}.onnx"), feeds), TOLERANCE["atol"], TOLERANCE["rtol"])
        log.info(f"[{STAGE}] ONNX Runtime parity {graph}: max abs error {parity[graph]}")

    report_src = os.path.join(run.dir, "report")
    if os.path.isdir(report_src):
        shutil.copytree(report_src, os.path.join(staging, "report"))
    metrics = dict(estate["metrics"], onnx_parity_max_abs_error=parity)
    manifest = {
        "schema_version": 1, "name": name, "description": cfg.export.description,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "image": {"height": vc.image_size, "width": vc.image_size, "channels": vc.in_channels,
                  "color": "grey" if vc.in_channels == 1 else "rgb", "value_range": [-1, 1],
                  "layout": "NCHW"},
        "latent": {"shape": list(tok.latent_shape), "layout": "NCHW", "dtype": "float32",
                   "mean": float(mean), "scale": float(scale)},
        "classes": [{"id": i, "name": n} for i, n in enumerate(names)],
        "null_class": null,
        "sampler": estate["sampler"],
        "noise": {"generator": NOISE_GENERATOR, "version": NOISE_VERSION},
        "graphs": {g: {"file": f"{g}.onnx", "inputs": GRAPH_IO[g][0], "outputs": GRAPH_IO[g][1]}
                   for g in GRAPH_IO},
        "files": file_table(staging),
        "golden": "golden/golden.json",
        "training": {"config": to_dict(cfg), "torch_version": torch.__version__,
                     "run_dir": run.dir, "stage_seconds": metrics.get("stage_seconds", {})},
        "metrics": metrics,
    }
    with open(os.path.join(staging, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    validate_model_folder(staging, name)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    total = sum(v["bytes"] for v in manifest["files"].values())
    log.info(f"[{STAGE}] wrote {out_dir} ({total / 1e6:.2f} MB)")
