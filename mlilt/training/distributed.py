"""Data-parallel training across processes (``torchrun``): joining the group, ranks, gathers, gradient averaging.

Every helper is a no-op in a single process, so the training loop reads the same either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_gather


def init_distributed() -> bool:
    """Join the process group that ``torchrun`` / ``accelerate launch`` set up (env vars); gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def rank_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank_world()[0] == 0


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (filling caches); the other processes run it once rank 0 is done."""
    rank, world = rank_world()
    if world > 1 and rank != 0:
        dist.barrier()
    yield
    if world > 1 and rank == 0:
        dist.barrier()


def barrier() -> None:
    if rank_world()[1] > 1:
        dist.barrier()


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process; gradients flow back to each process's own part."""
    if rank_world()[1] == 1:
        return tensor
    return torch.cat(all_gather(tensor), dim=0)


def gather_ids(ids: torch.Tensor) -> torch.Tensor:
    """Concatenate integer ids from every process (no gradient)."""
    world = rank_world()[1]
    if world == 1:
        return ids
    parts = [torch.empty_like(ids) for _ in range(world)]
    dist.all_gather(parts, ids)
    return torch.cat(parts, dim=0)


def average_gradients(params: list[torch.Tensor]) -> None:
    """Average every parameter's gradient over the processes (a missing gradient counts as zero)."""
    world = rank_world()[1]
    if world == 1:
        return
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad)
        param.grad /= world
