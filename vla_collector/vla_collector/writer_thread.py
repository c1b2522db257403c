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
The thread that owns the EpisodeWriter: steps arrive through a bounded queue, commands wait.

Every call into the writer (opening the dataset included) happens on this one thread, so the
subscription callbacks only hand steps over and a slow disk never stalls the executor. Steps are
offered without blocking (a full queue drops the step and the caller counts it); commands (open,
begin, end, discard, close) are queued behind the steps already waiting and block until done,
so end() returns only once the episode is durable.
"""

from dataclasses import dataclass
import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

from humanoid_vla.data import (
    EpisodeFormatError,
    EpisodeStorageError,
    EpisodeWriter,
)
from humanoid_vla.data.schema import is_image_key

_LOG = logging.getLogger(__name__)

# How long a command may wait for the thread before the caller gives up (the disk is stuck).
COMMAND_TIMEOUT_S = 120.0


@dataclass
class WriteResult:
    """What the writer thread did with one episode."""

    name: Optional[str] = None
    written: int = 0
    rejected: int = 0
    last_rejection: str = ''
    busy_s: float = 0.0
    cpu_s: float = 0.0
    image_bytes: int = 0
    error: Optional[str] = None
    warning: Optional[str] = None


class _Reply:
    """Where the writer thread leaves the outcome of a command."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: Optional[BaseException] = None


class EpisodeWriterThread:
    """
    Run an EpisodeWriter on a thread of its own.

    `open_writer` builds the EpisodeWriter (called on the thread; called again by the next
    open_dataset() or begin() after it failed). `on_failure(episode_id, result)` is called on
    the thread when a write error ended an episode: the episode is discarded (committed episodes
    are never touched) and its result is kept for the end() or discard() that follows.
    """

    def __init__(self, open_writer: Callable[[], EpisodeWriter], queue_size: int,
                 on_failure: Callable[[int, WriteResult], None]) -> None:
        self._open_writer = open_writer
        self._on_failure = on_failure
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._writer: Optional[EpisodeWriter] = None
        self._episode_id: Optional[int] = None
        self._result = WriteResult()
        self._failed: dict[int, WriteResult] = {}
        self._thread = threading.Thread(target=self._run, name='episode_writer', daemon=True)
        self._thread.start()

    # ---- called from other threads -----------------------------------------------------------

    def open_dataset(self) -> EpisodeWriter:
        """Open the dataset if it is not open yet; return the writer (EpisodeStorageError)."""
        return self._call(self._do_open)

    def begin(self, episode_id: int, instruction: str) -> None:
        """Start an episode (EpisodeStorageError when the dataset cannot be written)."""
        self._call(self._do_begin, episode_id, instruction)

    def offer_step(self, episode_id: int, observations: dict, action, stamp: float) -> bool:
        """Queue a step without blocking; False when the queue is full (the step is dropped)."""
        try:
            self._queue.put_nowait((self._do_step, (episode_id, observations, action, stamp),
                                    None))
        except queue.Full:
            return False
        return True

    def end(self, episode_id: int, success: bool) -> WriteResult:
        """Write the queued steps and commit the episode; return once it is on disk."""
        return self._call(self._do_end, episode_id, success)

    def discard(self, episode_id: int) -> WriteResult:
        """Drop the episode and its partial file."""
        return self._call(self._do_discard, episode_id)

    def close(self, timeout: float = 30.0) -> None:
        """Close the dataset (an episode in progress stays on disk as .partial) and stop."""
        if not self._thread.is_alive():
            return
        try:
            self._call(self._do_close, timeout=timeout)
        finally:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)

    @property
    def queued(self) -> int:
        """Return how many steps and commands wait for the thread."""
        return self._queue.qsize()

    def _call(self, function: Callable, *args, timeout: float = COMMAND_TIMEOUT_S):
        reply = _Reply()
        try:
            self._queue.put((function, args, reply), timeout=timeout)
        except queue.Full:
            raise EpisodeStorageError(f'the writer thread is stuck (no progress in {timeout} s)')
        if not reply.done.wait(timeout):
            raise EpisodeStorageError(f'the writer thread is stuck (no answer in {timeout} s)')
        if reply.error is not None:
            raise reply.error
        return reply.value

    # ---- on the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            function, args, reply = item
            try:
                value = function(*args)
            except Exception as error:  # noqa: BLE001 - the thread must outlive a bug
                if reply is None:
                    _LOG.exception('writer thread: %s failed', function.__name__)
                else:
                    reply.error = error
            else:
                if reply is not None:
                    reply.value = value
            finally:
                if reply is not None:
                    reply.done.set()

    def _do_open(self) -> EpisodeWriter:
        if self._writer is None:
            self._writer = self._open_writer()
        return self._writer

    def _do_begin(self, episode_id: int, instruction: str) -> None:
        writer = self._do_open()
        self._failed.clear()
        writer.begin_episode(instruction)
        self._episode_id = episode_id
        self._result = WriteResult()

    def _do_step(self, episode_id: int, observations: dict, action, stamp: float) -> None:
        if episode_id != self._episode_id:
            return  # The episode ended (write error) while this step waited.
        result = self._result
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            self._writer.add_step(observations, action, stamp)
        except EpisodeFormatError as error:
            result.rejected += 1
            result.last_rejection = str(error)
        except EpisodeStorageError as error:
            self._fail(str(error))
        else:
            result.written += 1
            result.image_bytes += sum(v.nbytes for k, v in observations.items()
                                      if is_image_key(k))
        finally:
            result.busy_s += time.perf_counter() - started
            result.cpu_s += time.thread_time() - cpu_started

    def _fail(self, message: str) -> None:
        try:
            self._writer.discard_episode()
        except EpisodeStorageError as error:
            message = f'{message}; discarding it failed too: {error}'
        episode_id, result = self._episode_id, self._result
        self._episode_id = None
        result.error = message
        self._failed[episode_id] = result
        self._on_failure(episode_id, result)

    def _do_end(self, episode_id: int, success: bool) -> WriteResult:
        if episode_id in self._failed:
            return self._failed.pop(episode_id)
        if episode_id != self._episode_id:
            raise EpisodeStorageError(f'episode {episode_id} is not being recorded')
        writer, result = self._writer, self._result
        self._episode_id = None
        before = set(writer.demo_names)
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            result.name = writer.end_episode(success)
        except EpisodeFormatError as error:  # No step: the writer discarded it.
            result.error = str(error)
        except EpisodeStorageError as error:
            saved = sorted(set(writer.demo_names) - before)
            if saved:  # The episode file is whole; only its link in the index is late.
                result.name, result.warning = saved[0], str(error)
            else:
                result.error = str(error)
                if writer.episode_in_progress:
                    try:
                        writer.discard_episode()
                    except EpisodeStorageError as discard_error:
                        result.error += f'; discarding it failed too: {discard_error}'
        finally:
            result.busy_s += time.perf_counter() - started
            result.cpu_s += time.thread_time() - cpu_started
        return result

    def _do_discard(self, episode_id: int) -> WriteResult:
        if episode_id in self._failed:
            return self._failed.pop(episode_id)
        if episode_id != self._episode_id:
            raise EpisodeStorageError(f'episode {episode_id} is not being recorded')
        self._episode_id = None
        self._writer.discard_episode()
        return self._result

    def _do_close(self) -> None:
        self._episode_id = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
