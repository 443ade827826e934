"""Device choice and DistributedDataParallel setup, in one place.

Single process: `python -m dmvae all`. Several GPUs: `torchrun --nproc_per_node 8 -m dmvae all`
(torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; we read them here and nowhere else).
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import PipelineError


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def enabled(self):
        return self.world_size > 1 or dist.is_initialized()


def pick_device(choice, local_rank=0):
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU is an error, not a fallback."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise PipelineError("device_unavailable", "--device cuda but no CUDA device is "
                                "visible; use --device cpu or --device auto")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if choice != "cpu":
        raise PipelineError("config_invalid", f"--device must be auto|cpu|cuda, got {choice!r}")
    return torch.device("cpu")


def setup(device_choice="auto", threads=None):
    """Init the process group when launched by torchrun; returns this process's Dist."""
    if threads:
        torch.set_num_threads(threads)
    elif not torch.cuda.is_available():
        # torch sometimes starts with 1 thread in containers; use the cores we were given
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_choice, local)
    launched = "RANK" in os.environ and "MASTER_ADDR" in os.environ  # torchrun (any size)
    if launched and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local, device)


def teardown():
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model, d):
    """DDP around a trainable module when distributed; the bare module otherwise."""
    if not d.enabled:
        return model
    ids = [d.device.index] if d.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model):
    return model.module if hasattr(model, "module") else model


def mean_across(value, d):
    """Average a python float over ranks (for logging)."""
    if not d.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return t.item() / d.world_size


def barrier(d):
    if d.enabled:
        dist.barrier()
