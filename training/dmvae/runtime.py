"""What every stage shares: the run folder, logging, metrics, checkpoints, batches, schedules.

<run-dir>/
  config.json              resolved config of the latest invocation
  train.log                everything logged (also printed)
  metrics/<stage>.jsonl    one JSON object per logged step
  checkpoints/<stage>.pt   latest state of a stage (final when it holds "done": true)
"""
import json
import logging
import math
import os
import random
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from . import config as config_mod
from .distributed import Dist
from .errors import PipelineError

STAGES = ("ssl", "tokenizer", "reference", "align", "generator", "eval", "export")


class Run:
    """One run folder, as seen by one process (only rank 0 writes)."""

    def __init__(self, run_dir, cfg, args, d=None):
        self.dir, self.cfg, self.args, self.dist = run_dir, cfg, dict(args), d or Dist()
        self.ckpt_dir = os.path.join(run_dir, "checkpoints")
        if self.dist.is_main:
            os.makedirs(self.ckpt_dir, exist_ok=True)
            os.makedirs(os.path.join(run_dir, "metrics"), exist_ok=True)
            with open(os.path.join(run_dir, "config.json"), "w") as f:
                json.dump(config_mod.to_dict(cfg), f, indent=2)
        self.log = make_logger(run_dir if self.dist.is_main else None, self.dist.rank)

    # --- metrics -------------------------------------------------------------------------------
    def metric(self, stage, step, **values):
        """Append one line to metrics/<stage>.jsonl (rank 0)."""
        if not self.dist.is_main:
            return
        row = {"step": step, "time": round(time.time(), 2), **values}
        with open(os.path.join(self.dir, "metrics", f"{stage}.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")

    def read_metrics(self, stage):
        path = os.path.join(self.dir, "metrics", f"{stage}.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    # --- checkpoints ---------------------------------------------------------------------------
    def ckpt_path(self, stage):
        return os.path.join(self.ckpt_dir, f"{stage}.pt")

    def save(self, stage, state, done=False):
        """Atomic write: a run killed mid-save keeps its previous checkpoint."""
        if not self.dist.is_main:
            return
        state = dict(state, done=done, stage=stage, config=config_mod.to_dict(self.cfg),
                     args=self.args, torch_version=torch.__version__)
        path = self.ckpt_path(stage)
        tmp = path + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, path)
        self.log.info(f"[{stage}] checkpoint {'(final) ' if done else ''}step "
                      f"{state.get('step')} -> {path}")

    def load(self, stage):
        """Latest checkpoint of `stage` or None."""
        path = self.ckpt_path(stage)
        if not os.path.exists(path):
            return None
        return load_checkpoint(path)

    def require(self, stage, needed_by):
        """Final checkpoint of an earlier stage, or an error saying which command makes it."""
        state = self.load(stage)
        if state is None or not state.get("done"):
            what = "is unfinished" if state else "was not found"
            raise PipelineError("missing_stage", f"{needed_by} needs the {stage} stage, but "
                                f"{self.ckpt_path(stage)} {what}. Run first: python -m dmvae "
                                f"{stage} --run-dir {self.dir} (or `all`)")
        return state

    def is_done(self, stage, state=None):
        """Finished at the length its config asks for now. A final checkpoint with fewer steps
        than `<stage>.steps` is not done: rerunning the stage trains it on from there (the LR
        schedule is then the one of the new length, so it rises again: a warm restart)."""
        state = self.load(stage) if state is None else state
        if not (state and state.get("done")):
            return False
        steps = getattr(getattr(self.cfg, stage, None), "steps", None)
        if steps is None or state.get("trained") is False:  # loaded or measured, not trained
            return True
        return state.get("step", 0) >= steps


def load_checkpoint(path):
    """One of our own checkpoints. They hold numpy RNG state, which PyTorch >= 2.6 refuses to
    unpickle by default (weights_only=True); these files are ours, so full unpickling is fine."""
    return torch.load(path, map_location="cpu", weights_only=False)


def make_logger(run_dir, rank=0):
    """Rank 0 logs to stdout and train.log; other ranks print only their warnings and errors,
    tagged with the rank, so a torchrun console is not N copies of one log."""
    log = logging.getLogger("dmvae")
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    tag = "" if rank == 0 else f"[rank {rank}] "
    fmt = logging.Formatter(f"%(asctime)s {tag}%(message)s", "%H:%M:%S")
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(fmt)
    log.addHandler(stream)
    if run_dir:
        fh = logging.FileHandler(os.path.join(run_dir, "train.log"))
        fh.setFormatter(fmt)
        log.addHandler(fh)
    return log


# ---------------------------------------------------------------------------------------------
# Seeds, batches, schedules, sanity
# ---------------------------------------------------------------------------------------------

def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state():
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def batches(dataset, batch_size, seed, d, start_step=0, workers=0):
    """Endless shuffled batches (x, y) on d.device; each rank sees its own shard. `workers`
    loader processes decode images beside training (data.num_workers; 0 for in-memory sets).

    The epoch order depends only on (seed, epoch), so a resumed run continues with the epoch
    it stopped in (from its start: the exact position inside an epoch is not restored).
    """
    sampler = DistributedSampler(dataset, d.world_size, d.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0)
    if len(loader) == 0:
        raise PipelineError("config_invalid", f"batch size {batch_size} is larger than the "
                            f"{len(dataset)} training images of this rank; lower it")
    epoch = start_step // len(loader)
    while True:
        sampler.set_epoch(epoch)
        for x, y in loader:
            yield x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
        epoch += 1


def lr_at(step, total, optim):
    """Linear warmup, then cosine decay to lr * min_lr_ratio."""
    warm = min(optim.warmup_steps, max(total // 10, 1))
    if step < warm:
        return optim.lr * (step + 1) / warm
    progress = (step - warm) / max(total - warm, 1)
    ratio = optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return optim.lr * ratio


def set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


def adamw(params, optim):
    return torch.optim.AdamW(params, lr=optim.lr, betas=tuple(optim.betas),
                             weight_decay=optim.weight_decay)


def check_finite(stage, step, **losses):
    """Stop the run on NaN/inf instead of training on garbage."""
    for name, value in losses.items():
        v = float(value)
        if not math.isfinite(v):
            raise PipelineError("non_finite_loss", f"[{stage}] step {step}: {name} = {v}; "
                                "lower the learning rate or resume from the last checkpoint")


@torch.no_grad()
def ema_update(ema, model, decay, step=None):
    """ema <- decay * ema + (1 - decay) * model; with `step`, the decay warms up as
    (1 + step) / (10 + step) so short runs do not average in their random start."""
    if step is not None:
        decay = min(decay, (1 + step) / (10 + step))
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def progress(total, initial, desc, d):
    """tqdm bar on rank 0 only (kept off when stdout is not a terminal and TQDM_DISABLE is set)."""
    from tqdm import tqdm
    disable = not d.is_main or os.environ.get("TQDM_DISABLE") == "1"
    return tqdm(total=total, initial=initial, desc=desc, disable=disable, dynamic_ncols=True,
                mininterval=5.0, file=sys.stderr)


def train_loop(run, stage, total, start, step_fn, state_fn):
    """Run step_fn(step) -> {name: float} from `start` to `total` with a progress bar, logging
    means every cfg.log_every steps, checkpointing every cfg.ckpt_every steps, on Ctrl-C/SIGTERM
    and at the end (final). state_fn(step) -> dict of everything needed to resume."""
    cfg, d, log = run.cfg, run.dist, run.log
    bar = progress(total, start, stage, d)
    sums, counts, count, t0, step = {}, {}, 0, time.time(), start
    try:
        while step < total:
            values = step_fn(step)
            step += 1
            check_finite(stage, step, **{k: v for k, v in values.items() if "loss" in k})
            for k, v in values.items():  # keys may come every k steps only: mean over their own
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            count += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                means = {k: round(v / counts[k], 6) for k, v in sums.items()}
                rate = count / max(time.time() - t0, 1e-9)
                log.info(f"[{stage}] step {step}/{total} " + " ".join(
                    f"{k} {v:.4g}" for k, v in means.items()) + f" ({rate:.2f} it/s)")
                run.metric(stage, step, **means, steps_per_s=round(rate, 3))
                sums, counts, count, t0 = {}, {}, 0, time.time()
            if step % cfg.ckpt_every == 0 and step < total:
                run.save(stage, state_fn(step))
    except KeyboardInterrupt:
        log.info(f"[{stage}] interrupted at step {step}; saving a checkpoint to resume from")
        run.save(stage, state_fn(step))
        raise
    finally:
        bar.close()
    run.save(stage, state_fn(step), done=True)
