"""Shared fixtures: a synthetic Fashion-MNIST-format dataset and a tiny config for every stage.

The synthetic set (IDX .gz files, 10 classes of simple class-dependent shapes) keeps these
tests independent of the Debian dataset package and fast; test_data.py reads the real files
when they are installed.
"""
import gzip
import os
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TQDM_DISABLE", "1")

TRAINING_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(TRAINING_DIR, "configs", "fmnist.json")


def write_idx(path, array):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def synthetic_images(n, seed):
    """uint8 [n, 28, 28] and labels: class c is a bar at row 2 + 2c plus noise."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 + 2 * c:5 + 2 * c, 4:24] = 220
    return images, labels


@pytest.fixture(scope="session")
def fake_fmnist(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmnist")
    for split, n, seed in (("train", 320, 0), ("t10k", 80, 1)):
        images, labels = synthetic_images(n, seed)
        write_idx(str(root / f"{split}-images-idx3-ubyte.gz"), images)
        write_idx(str(root / f"{split}-labels-idx1-ubyte.gz"), labels)
    return str(root)


def tiny_overrides(data_root):
    """Every stage at toy size: seconds per stage on one CPU core."""
    return [
        f"data.root={data_root}", "log_every=1", "ckpt_every=2",
        "ssl.model.dim=16", "ssl.model.depth=1", "ssl.model.heads=2", "ssl.steps=3",
        "ssl.batch_size=16",
        "tokenizer.model.bottleneck_hidden=16", "tokenizer.model.decoder.base_channels=8",
        "tokenizer.model.decoder.groups=4", "tokenizer.steps=3", "tokenizer.batch_size=16",
        "reference.model.dim=16", "reference.model.depth=1", "reference.model.heads=2",
        "reference.steps=3", "reference.batch_size=16",
        "align.steps=3", "align.batch_size=16", "align.k=2",
        "generator.model.dim=16", "generator.model.depth=1", "generator.model.heads=2",
        "generator.steps=3", "generator.batch_size=16",
        "eval.classifier_epochs=1", "eval.num_gen_per_class=2", "eval.sweep_per_class=1",
        "eval.cfg_sweep=[1.0, 3.0]", "eval.sampler.steps=2",
    ]


@pytest.fixture
def tiny_args(fake_fmnist, tmp_path):
    """argv tail for `python -m dmvae <stage>`: tiny config, fresh run dir, a model folder."""
    return make_args(fake_fmnist, tmp_path)


def make_args(data_root, base):
    args = ["--config", CONFIG, "--run-dir", str(base / "run"), "--threads", "1",
            "--out", str(base / "models" / "fmnist-dmvae")]
    for o in tiny_overrides(data_root):
        args += ["--set", o]
    return args


@pytest.fixture(scope="session")
def tiny_run(fake_fmnist, tmp_path_factory):
    """One tiny `all` run shared by the tests that only read its outputs."""
    import time
    from dmvae.cli import main
    base = tmp_path_factory.mktemp("tiny")
    args = make_args(fake_fmnist, base)
    t0 = time.time()
    code = main(["all", *args])
    return {"code": code, "seconds": time.time() - t0, "args": args, "run": base / "run",
            "model": base / "models" / "fmnist-dmvae"}
