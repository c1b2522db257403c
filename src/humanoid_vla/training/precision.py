"""
Which number format training runs in: ``fp32``, ``bf16`` autocast, or ``auto``.

bf16 autocast pays only where the hardware multiplies bf16 natively.  Measured on the 2-core
machines: an Intel CPU with AMX ran the simulation recipe 1.3x faster in bf16 than in fp32
(6.0 against 4.6 it/s), while an AMD EPYC with AVX2 only took about 6 s per step in bf16
against 0.6 s in fp32 (bf16 is emulated there).  ``auto`` picks bf16 only where it is native.
"""

from __future__ import annotations

import torch

PRECISIONS = ('fp32', 'bf16', 'auto')


def native_bf16(device: torch.device) -> bool:
    """Return whether ``device`` multiplies bf16 in hardware (CUDA bf16, CPU AMX / AVX512-BF16)."""
    if device.type == 'cuda':
        return bool(torch.cuda.is_bf16_supported())
    if device.type == 'cpu':
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """Return ``fp32`` or ``bf16``: ``auto`` becomes bf16 exactly where it is native."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision == 'auto':
        return 'bf16' if native_bf16(device) else 'fp32'
    return precision


def emulated_bf16_warning(precision: str, device: torch.device) -> str | None:
    """Return a warning when ``bf16`` was asked for on a device that only emulates it."""
    if precision != 'bf16' or native_bf16(device):
        return None
    return (f'precision bf16 on a {device.type} without native bf16 (no AMX / AVX512-BF16): '
            'autocast is emulated and can be 10x slower than fp32; use precision auto or fp32')
