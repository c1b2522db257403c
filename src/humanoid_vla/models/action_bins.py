"""
Actions as classes: the bins of a classified action head, its targets, loss and read-out.

A regressed action entry trained on demonstrations that split two ways (the target put left
of the reference in some scenes, right of it in look-alike ones) settles between the two, which
is neither; a distribution over bins keeps both and the read-out picks one.  Used by
:class:`CustomVLAModel` when ``action_bins`` > 0 (see CustomVLAConfig).
"""

from __future__ import annotations

import torch
from torch.nn import functional

from .configuration_custom_vla import ACTION_BIN_READOUTS

# Bins on each side of the most likely one that the 'mode' read-out averages over: enough to
# place a value between bin centres, few enough not to reach into a second mode.
DECODE_WINDOW = 2


class ActionBins:
    """``count`` bin centres evenly spread over ``[-half_range, half_range]``."""

    def __init__(self, count: int, half_range: float, readout: str = 'mode') -> None:
        if count < 2 or not half_range > 0:
            raise ValueError(f'need at least 2 bins and a positive range, got {count} and '
                             f'{half_range}')
        if readout not in ACTION_BIN_READOUTS:
            raise ValueError(f'readout must be one of {ACTION_BIN_READOUTS}, got {readout!r}')
        self.count = count
        self.half_range = float(half_range)
        self.readout = readout

    def centres(self, like: torch.Tensor) -> torch.Tensor:
        """Return the bin centres with ``like``'s device and dtype."""
        return torch.linspace(-self.half_range, self.half_range, self.count,
                              device=like.device, dtype=like.dtype)

    def two_hot(self, values: torch.Tensor) -> torch.Tensor:
        """
        Return ``values`` (...) as distributions over the bins (..., count).

        Each value's weight is split between the two centres around it in proportion to its
        closeness, so the expectation over the bins gives the value back exactly (values
        beyond the range give the outermost centre).
        """
        position = (values.float().clamp(-self.half_range, self.half_range) + self.half_range)
        position = position / (2 * self.half_range) * (self.count - 1)
        lower = position.floor().clamp(max=self.count - 2)
        upper_weight = (position - lower).unsqueeze(-1)
        lower_index = lower.long().unsqueeze(-1)
        target = torch.zeros(*values.shape, self.count, device=values.device)
        target.scatter_(-1, lower_index, 1.0 - upper_weight)
        target.scatter_add_(-1, lower_index + 1, upper_weight)
        return target

    def loss(self, logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Return the cross-entropy (...) of ``logits`` (..., count) against ``values`` (...)."""
        log_probs = functional.log_softmax(logits.float(), dim=-1)
        return -(self.two_hot(values) * log_probs).sum(-1)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """
        Return the values (...) that ``logits`` (..., count) say.

        'mode': the expectation over the most likely bin and its DECODE_WINDOW neighbours on
        each side, one mode of a split distribution; 'mean': the expectation over all bins.
        """
        probs = functional.softmax(logits.float(), dim=-1)
        window = probs
        if self.readout == 'mode':
            index = torch.arange(self.count, device=logits.device)
            best = probs.argmax(dim=-1, keepdim=True)
            window = probs * ((index - best).abs() <= DECODE_WINDOW)
        centres = self.centres(window)
        values = (window * centres).sum(-1) / window.sum(-1).clamp_min(1e-12)
        return values.to(logits.dtype)
