"""Killed or interrupted runs resume from their checkpoints.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_resume.py
"""
import json
import os
import signal
import subprocess
import sys
import time

import torch

from dmvae.cli import main
from dmvae.runtime import load_checkpoint
from dmvae.stages import ssl as ssl_stage

from conftest import TRAINING_DIR


def _steps_logged(run_dir, stage):
    path = os.path.join(run_dir, "metrics", f"{stage}.jsonl")
    with open(path) as f:
        return [json.loads(line)["step"] for line in f if line.strip()]


def test_a_crashed_stage_resumes_from_its_last_periodic_checkpoint(tiny_args, tmp_path,
                                                                  monkeypatch):
    args = tiny_args + ["--set", "ssl.steps=5"]           # ckpt_every=2 in the tiny config
    real_loop = ssl_stage.train_loop

    def crash_at_step_3(run, stage, total, start, step_fn, state_fn):
        def crashing(step):
            if step == 3:
                raise RuntimeError("simulated crash (power loss, OOM kill...)")
            return step_fn(step)
        return real_loop(run, stage, total, start, crashing, state_fn)

    monkeypatch.setattr(ssl_stage, "train_loop", crash_at_step_3)
    try:
        main(["ssl", *args])
    except RuntimeError:
        pass
    run_dir = str(tmp_path / "run")
    ckpt = load_checkpoint(os.path.join(run_dir, "checkpoints", "ssl.pt"))
    assert ckpt["step"] == 2 and not ckpt["done"]
    assert ckpt["config"]["ssl"]["steps"] == 5 and "overrides" in ckpt["args"]

    monkeypatch.setattr(ssl_stage, "train_loop", real_loop)
    assert main(["ssl", *args]) == 0
    ckpt = load_checkpoint(os.path.join(run_dir, "checkpoints", "ssl.pt"))
    assert ckpt["step"] == 5 and ckpt["done"]
    # step 3 ran before the crash and again after it: its first result was lost with the crash
    assert _steps_logged(run_dir, "ssl") == [1, 2, 3, 3, 4, 5]
    assert "resuming from step 2" in open(os.path.join(run_dir, "train.log")).read()


def test_sigterm_saves_a_checkpoint_and_the_same_command_finishes_the_stage(tiny_args, tmp_path):
    args = tiny_args + ["--set", "ssl.steps=100000", "--set", "ckpt_every=100000"]
    run_dir = str(tmp_path / "run")
    proc = subprocess.Popen([sys.executable, "-m", "dmvae", "ssl", *args], cwd=TRAINING_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(run_dir, "metrics", "ssl.jsonl")
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.exists(metrics) and
                                          len(open(metrics).read().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err
    ckpt = load_checkpoint(os.path.join(run_dir, "checkpoints", "ssl.pt"))
    stopped = ckpt["step"]
    assert stopped >= 3 and not ckpt["done"]

    finish = tiny_args + ["--set", f"ssl.steps={stopped + 2}", "--set", "ckpt_every=100000"]
    assert main(["ssl", *finish]) == 0
    ckpt = load_checkpoint(os.path.join(run_dir, "checkpoints", "ssl.pt"))
    assert ckpt["done"] and ckpt["step"] == stopped + 2


def test_finished_stages_are_skipped_by_all_and_restart_retrains(tiny_args, tmp_path):
    assert main(["ssl", *tiny_args]) == 0
    path = tmp_path / "run" / "checkpoints" / "ssl.pt"
    first = os.path.getmtime(path)
    assert main(["ssl", *tiny_args]) == 0
    assert os.path.getmtime(path) == first            # done: not retrained
    assert main(["ssl", *tiny_args, "--restart"]) == 0
    assert os.path.getmtime(path) > first


def test_a_finished_stage_asked_for_more_steps_trains_on_from_where_it_stopped(tiny_args,
                                                                                 tmp_path):
    run_dir = str(tmp_path / "run")
    assert main(["ssl", *tiny_args, "--set", "ssl.steps=3"]) == 0
    assert main(["ssl", *tiny_args, "--set", "ssl.steps=3"]) == 0     # done: skipped
    assert _steps_logged(run_dir, "ssl") == [1, 2, 3]
    assert main(["ssl", *tiny_args, "--set", "ssl.steps=5"]) == 0     # longer: trains on
    ckpt = load_checkpoint(os.path.join(run_dir, "checkpoints", "ssl.pt"))
    assert ckpt["step"] == 5 and ckpt["done"]
    assert _steps_logged(run_dir, "ssl") == [1, 2, 3, 4, 5]
    assert "resuming from step 3" in open(os.path.join(run_dir, "train.log")).read()


def test_stage_times_add_up_over_resumes_and_start_again_on_restart(tmp_path):
    from types import SimpleNamespace
    from dmvae.cli import record_time
    run = SimpleNamespace(dir=str(tmp_path), dist=SimpleNamespace(is_main=True))
    record_time(run, "generator", 10.0)
    record_time(run, "generator", 5.0)                  # resumed after a stop
    assert json.loads((tmp_path / "timings.json").read_text()) == {"generator": 15.0}
    record_time(run, "generator", 7.0, fresh=True)      # --restart
    assert json.loads((tmp_path / "timings.json").read_text()) == {"generator": 7.0}
