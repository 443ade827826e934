"""Command line: one sub-command per stage, plus `all`.

    cd training
    python -m dmvae all --config configs/fmnist.json --run-dir runs/fmnist-ship
    python -m dmvae tokenizer --run-dir runs/fmnist-ship --set tokenizer.steps=200
    torchrun --nproc_per_node 8 -m dmvae all --config configs/imagenet256.json --device cuda

Every stage resumes from <run-dir>/checkpoints/<stage>.pt and skips itself once final.
"""
import argparse
import json
import os
import signal
import sys
import time

from . import config as config_mod
from . import distributed
from .errors import PipelineError
from .runtime import STAGES, Run

DEFAULT_CONFIG = "configs/fmnist.json"  # what we ship; paths are relative to training/


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m dmvae", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("stage", choices=STAGES + ("all",), help="stage to run; `all` runs every "
                   "stage in order, skipping finished ones")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="JSON config file")
    p.add_argument("--run-dir", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set tokenizer.steps=200 (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto = cuda when available, else cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: all cores of this process)")
    p.add_argument("--out", default=None, help="export: model folder to write "
                   "(default: ../models/<export.name>)")
    p.add_argument("--restart", action="store_true",
                   help="delete this stage's checkpoint and train it again from scratch")
    return p.parse_args(argv)


def _sigterm(signum, frame):
    raise KeyboardInterrupt  # a `kill` saves a checkpoint like Ctrl-C does


def record_time(run, stage, seconds, fresh=False):
    """Adds a stage's wall time to timings.json: resumed parts add up; `fresh` (a --restart)
    starts the count again."""
    if not run.dist.is_main:
        return
    path = os.path.join(run.dir, "timings.json")
    times = {}
    if os.path.exists(path):
        with open(path) as f:
            times = json.load(f)
    times[stage] = round((0.0 if fresh else times.get(stage, 0.0)) + seconds, 1)
    with open(path, "w") as f:
        json.dump(times, f, indent=2)


def run_stage(run, stage, out, explicit, restarted=False):
    from .stages import align, eval as eval_stage, export, generator, reference, ssl, tokenizer
    modules = {"ssl": ssl, "tokenizer": tokenizer, "reference": reference, "align": align,
               "generator": generator, "eval": eval_stage}
    # export always runs; eval reruns when asked for by name (it measures, trains nothing big)
    if stage == "export" or (stage == "eval" and explicit) or not run.is_done(stage):
        t0 = time.time()
        run.log.info(f"=== stage {stage} ===")
        if stage == "export":
            export.run(run, out)
        else:
            modules[stage].run(run)
        # eval and export measure or write anew each time: their last run is their time
        record_time(run, stage, time.time() - t0,
                    fresh=restarted or stage in ("eval", "export"))
        distributed.barrier(run.dist)
    else:
        run.log.info(f"=== stage {stage}: done already ({run.ckpt_path(stage)}) ===")


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        overrides = list(args.overrides)
        if args.seed is not None:
            overrides.append(f"seed={args.seed}")
        cfg = config_mod.load_config(args.config, overrides)
        run_dir = args.run_dir or os.path.join("runs", cfg.name)
        out = args.out or os.path.join("..", "models", cfg.export.name)
        d = distributed.setup(args.device, args.threads)
        run = Run(run_dir, cfg, vars(args), d)
        run.log.info(f"dmvae {args.stage}: config {args.config} run {run_dir} device {d.device} "
                     f"world {d.world_size}")
        if args.restart and args.stage != "all" and d.is_main:
            path = run.ckpt_path(args.stage)
            if os.path.exists(path):
                os.remove(path)
                run.log.info(f"--restart: removed {path}")
        stages = STAGES if args.stage == "all" else (args.stage,)
        for stage in stages:
            run_stage(run, stage, out, explicit=args.stage != "all",
                      restarted=args.restart and args.stage != "all")
    except PipelineError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume from the last checkpoint",
              file=sys.stderr)
        return 130
    finally:
        distributed.teardown()
    return 0
