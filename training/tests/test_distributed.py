"""The torchrun / DistributedDataParallel code path, at world size 1 on the gloo backend (the
only size this CPU machine can run; multi-GPU runs use the same code with NCCL).

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_distributed.py
"""
import os
import socket
import subprocess
import sys

import torch

from conftest import TRAINING_DIR
from dmvae.runtime import load_checkpoint


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stages_train_under_ddp_with_gloo_at_world_size_one(tiny_args, tmp_path):
    env = dict(os.environ, RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(free_port()), TQDM_DISABLE="1")
    for stage in ("ssl", "tokenizer", "reference", "align", "generator"):
        proc = subprocess.run([sys.executable, "-m", "dmvae", stage, *tiny_args, "--device", "cpu"],
                              cwd=TRAINING_DIR, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "world 1" in proc.stdout
        ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / f"{stage}.pt")
        assert ckpt["done"]
    # DDP wraps the module: checkpoints must still hold the bare model's keys
    assert not any(k.startswith("module.") for k in ckpt["model"])


def test_whole_pipeline_runs_as_two_processes_with_gloo(tiny_args, tmp_path):
    """World size 2 as torchrun would launch it (two processes, one rendezvous): gradients are
    all-reduced, each rank reads its own shard, only rank 0 writes and logs."""
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port, TQDM_DISABLE="1")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dmvae", "all", *tiny_args, "--device", "cpu"],
            cwd=TRAINING_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for rank, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"rank {rank}:\n{out[-3000:]}"
    assert "world 2" in outs[0] and "[align] step 3/3" in outs[0]
    assert "[align] step" not in outs[1], "rank 1 repeats rank 0's progress log"
    weights = {"ssl": "model", "tokenizer": "tokenizer", "reference": "model",
               "align": "tokenizer", "generator": "model"}
    for stage, key in weights.items():
        ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / f"{stage}.pt")
        assert ckpt["done"] and not any(k.startswith("module.") for k in ckpt[key]), stage
    assert (tmp_path / "models" / "fmnist-dmvae" / "manifest.json").is_file()
