"""
One process or many: the same training code under ``python`` and under ``torchrun``.

``torchrun`` describes the job in environment variables (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``...).  When they say there is more than one process, a process
group is started (NCCL on CUDA, gloo on CPU) and each process takes its own GPU; otherwise
nothing is initialised and every collective below is a no-op, so the trainer never branches on
how it was launched.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Any

import torch
import torch.distributed as dist

DEVICES = ('auto', 'cpu', 'cuda')


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the job: its rank, the job's size and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device('cpu')
    owns_process_group: bool = False

    @property
    def enabled(self) -> bool:
        """Tell whether there are other processes to synchronise with."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Tell whether this process is the one that logs and writes files (rank 0)."""
        return self.rank == 0


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` into this process's device (its own GPU under torchrun)."""
    if preference not in DEVICES:
        raise ValueError(f'device must be one of {DEVICES}, got {preference!r}')
    if preference == 'auto':
        preference = 'cuda' if torch.cuda.is_available() else 'cpu'
    if preference == 'cpu':
        return torch.device('cpu')
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    return torch.device('cuda', local_rank % torch.cuda.device_count())


def init_distributed(device: str = 'auto') -> DistributedContext:
    """
    Read torchrun's environment and join the process group when there is more than one process.

    A process group someone else already started is reused (and left for them to destroy).
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if dist.is_available() and dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
        return DistributedContext(rank, local_rank, world_size,
                                  resolve_device(device, local_rank))
    target = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistributedContext(0, 0, 1, target)
    if not dist.is_available():
        raise RuntimeError('WORLD_SIZE > 1 but this torch build has no torch.distributed')
    if target.type == 'cuda':
        torch.cuda.set_device(target)
        dist.init_process_group('nccl', device_id=target)
    else:
        dist.init_process_group('gloo')
    return DistributedContext(rank, local_rank, world_size, target, owns_process_group=True)


def shutdown(context: DistributedContext) -> None:
    """Destroy the process group if ``init_distributed`` started it."""
    if context.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    """Wait for every process (e.g. until rank 0 has written a checkpoint)."""
    if context.enabled:
        if context.device.type == 'cuda':
            dist.barrier(device_ids=[context.device.index])
        else:
            dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over processes in place and return it."""
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(value: Any, context: DistributedContext) -> list[Any]:
    """Return every process's ``value``, indexed by rank (picklable values only)."""
    if not context.enabled:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered
