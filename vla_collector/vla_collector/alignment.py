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

"""
Recent values of the recorder's inputs, to look up the one in force at a camera frame's time.

Times are seconds on one clock (publication times from the middleware, or header stamps on the
same clock). The node asks for a step's inputs only once every input was heard from past the
frame's time (or a timeout passed), so a message processed late by a busy executor still lands
in the right step.
"""

from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

# Values kept per command and joint-state topic (5 s at 100 Hz).
HISTORY_LENGTH = 512
# Frames kept per camera (a third of a second at 30 Hz).
CAMERA_HISTORY_LENGTH = 10


@dataclass
class Stamped:
    """A value and its time (None and minus infinity when there is none)."""

    value: object = None
    time: float = float('-inf')


class History:
    """The recent values of one input, in the order they were published."""

    def __init__(self, length: int = HISTORY_LENGTH) -> None:
        self._entries: deque = deque(maxlen=length)

    def add(self, time: float, value) -> None:
        """Append a value published at `time`."""
        self._entries.append(Stamped(value, time))

    @property
    def newest_time(self) -> float:
        """Return the time of the newest value (minus infinity when there is none)."""
        return self._entries[-1].time if self._entries else float('-inf')

    def at(self, reference: float) -> Stamped:
        """Return the newest value published at or before `reference` (empty if none)."""
        for entry in reversed(self._entries):
            if entry.time <= reference:
                return entry
        return Stamped()


class _Frame:
    """One camera message, converted on first use."""

    __slots__ = ('time', 'msg', 'image', 'error')

    def __init__(self, time: float, msg) -> None:
        self.time = time
        self.msg = msg
        self.image = None
        self.error: Optional[str] = None


class CameraFrames:
    """The recent frames of one camera; images are converted (and so checked) only when used."""

    def __init__(self, convert: Callable, error_type: type,
                 length: int = CAMERA_HISTORY_LENGTH) -> None:
        self._convert = convert
        self._error_type = error_type
        self._frames: deque = deque(maxlen=length)

    def add(self, time: float, msg) -> None:
        """Append a frame message timed `time`."""
        self._frames.append(_Frame(time, msg))

    @property
    def newest_time(self) -> float:
        """Return the time of the newest frame (minus infinity when there is none)."""
        return self._frames[-1].time if self._frames else float('-inf')

    def nearest(self, reference: float, on_malformed: Callable[[str], None]) -> Stamped:
        """
        Return the well-formed image nearest in time to `reference` (empty if none).

        A malformed frame is reported to `on_malformed` once and never used.
        """
        for frame in sorted(self._frames, key=lambda f: abs(f.time - reference)):
            if frame.image is None and frame.error is None:
                try:
                    frame.image = self._convert(frame.msg)
                except self._error_type as error:
                    frame.error = str(error)
                    on_malformed(frame.error)
                frame.msg = None
            if frame.image is not None:
                return Stamped(frame.image, frame.time)
        return Stamped()
