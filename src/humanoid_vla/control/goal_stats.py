"""Per-goal numbers for the one summary line the server logs and returns."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GoalStats:
    """Steps, policy inference times and safety clamps of one goal."""

    steps: int = 0
    inference_ms: list[float] = field(default_factory=list)
    tick_ms: list[float] = field(default_factory=list)
    clamps: dict[str, int] = field(default_factory=dict)

    def record_tick(self, inference_ms: float | None, clamps: dict[str, int],
                    tick_ms: float | None = None) -> None:
        """
        Count one executed tick.

        ``inference_ms`` is None when the tick reused a chunk; ``tick_ms`` is the whole tick from
        taking the image to publishing the command (image conversion, policy, filter, publish).
        """
        self.steps += 1
        if tick_ms is not None:
            self.tick_ms.append(tick_ms)
        if inference_ms is not None:
            self.inference_ms.append(inference_ms)
        for kind, count in clamps.items():
            self.clamps[kind] = self.clamps.get(kind, 0) + count

    @property
    def total_clamps(self) -> int:
        """Return the number of clamps of every kind together."""
        return sum(self.clamps.values())

    def summary(self) -> str:
        """Return 'steps=..., inference mean/p99 ms, clamps=...' for logs and result messages."""
        if self.inference_ms:
            times = np.asarray(self.inference_ms)
            timing = (f'inference mean {times.mean():.1f} ms, '
                      f'p99 {np.percentile(times, 99):.1f} ms over {times.size} calls')
        else:
            timing = 'no policy calls'
        if self.tick_ms:
            ticks = np.asarray(self.tick_ms)
            timing += (f', tick median {np.median(ticks):.1f} ms, '
                       f'p99 {np.percentile(ticks, 99):.1f} ms')
        kinds = ', '.join(f'{k}={v}' for k, v in sorted(self.clamps.items()) if v) or 'none'
        return f'steps={self.steps}, {timing}, clamps={self.total_clamps} ({kinds})'
