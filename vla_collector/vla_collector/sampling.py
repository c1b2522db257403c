# Copyright 2026 The humanoid-vla Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Which frames of the clock camera become steps: a fixed-rate schedule on header stamps."""

from typing import Optional


class StepSchedule:
    """
    Pick frames at rate_hz from a faster (or equal) camera, keeping the average rate exact.

    Slots are one period apart. A frame is due once its stamp comes within half a frame interval
    (or half a period, if shorter) of the next slot, so the frame nearest each slot is taken and
    timer jitter never skips a slot when the camera runs at the sample rate. Slots advance from
    the previous slot, not from the frame, so a 30 Hz camera sampled at 10 Hz gives exactly 10
    steps a second. After a gap (or with a camera slower than the rate) the schedule restarts at
    the frame. Stamps must increase: a frame not newer than the last taken one is never due.
    """

    def __init__(self, rate_hz: float) -> None:
        if not rate_hz > 0.0:
            raise ValueError(f'sample rate must be positive, got {rate_hz}')
        self.period = 1.0 / float(rate_hz)
        self._next: Optional[float] = None
        self._last: Optional[float] = None
        self._seen: Optional[float] = None
        self._frame_interval: Optional[float] = None

    def reset(self) -> None:
        """Start over (a new episode): the next frame is due."""
        self._next = None
        self._last = None

    def observe(self, stamp: float) -> None:
        """Learn the camera's frame interval from every frame (recording or not)."""
        if self._seen is not None and stamp > self._seen:
            interval = min(stamp - self._seen, self.period)
            if self._frame_interval is None:
                self._frame_interval = interval
            else:
                self._frame_interval += 0.2 * (interval - self._frame_interval)
        self._seen = stamp

    def due(self, stamp: float) -> bool:
        """Tell whether a frame stamped `stamp` (seconds) should become a step."""
        if self._next is None:
            return True
        interval = self.period if self._frame_interval is None else self._frame_interval
        return stamp > self._last and stamp >= self._next - 0.5 * interval

    def take(self, stamp: float) -> None:
        """Record that the frame stamped `stamp` filled the current slot (recorded or dropped)."""
        if self._next is None or stamp >= self._next + self.period:
            self._next = stamp + self.period
        else:
            self._next += self.period
        self._last = stamp
