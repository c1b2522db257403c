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
Start the system's node executables as separate processes and always stop them again.

For machines without `ros2 launch`: the demo, the recording and the evaluation commands start the
same executables with the same config files (`<executable> --ros-args --params-file ...`). Each
process gets its own process group (non-interactive shells make background children ignore
SIGINT), is stopped with SIGINT and, after a timeout, SIGKILL — also on Ctrl-C, SIGTERM or an
exception in the caller.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import time
from typing import Optional, Sequence

from humanoid_vla.process_diagnostics import STACK_DUMP_SIGNAL

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]
CONFIG = WORKSPACE / 'config'
# Server camera_timeout_s for the simulation on a small CPU: the bridge's renderer shares it with
# the server and the recorder, so a frame can come later than a robot camera's would.
SIM_CAMERA_TIMEOUT_S = 2.0
# How long a hung node gets to write its stack dump before it is killed.
STACK_DUMP_WAIT_S = 1.0


def node_executable(package: str, executable: str) -> str:
    """Return the path of a ROS package's executable (ament index), or of a command on PATH."""
    try:
        from ament_index_python.packages import get_package_prefix, PackageNotFoundError
        try:
            candidate = pathlib.Path(get_package_prefix(package)) / 'lib' / package / executable
            if candidate.exists():
                return str(candidate)
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    found = shutil.which(executable)
    if found is None:
        raise FileNotFoundError(
            f'{package}/{executable} not found: build the workspace (make setup) and source it')
    return found


class NodeProcesses:
    """A set of node processes; a context manager that stops all of them on exit."""

    def __init__(self, log_dir: pathlib.Path) -> None:
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}
        self._previous_handlers = {}

    def __enter__(self) -> 'NodeProcesses':
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum, frame) -> None:
        raise KeyboardInterrupt(f'signal {signum}')

    def start(self, name: str, package: str, executable: str,
              ros_args: Sequence[str] = (), env: Optional[dict] = None) -> subprocess.Popen:
        """Start one node; its output goes to <log_dir>/<name>.log."""
        argv = [node_executable(package, executable), '--ros-args', *ros_args]
        log = open(self.log_dir / f'{name}.log', 'w')
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=WORKSPACE,
                                   env={**os.environ, **(env or {})})
        log.close()
        self.processes[name] = process
        return process

    def check_alive(self) -> None:
        """Raise RuntimeError naming any process that has exited, with its log's tail."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f'{name} exited with code {process.returncode}:\n'
                                   f'{self.log_tail(name)}')

    def log_tail(self, name: str, chars: int = 2000) -> str:
        """Return the end of a node's log (what it printed last, e.g. why it failed)."""
        return (self.log_dir / f'{name}.log').read_text(errors='replace')[-chars:]

    def stop(self, name: str, timeout: float = 15.0) -> int:
        """SIGINT the node's process group, wait, SIGKILL after the timeout; return its code."""
        return self.stop_all(timeout, names=[name])[name]

    def stop_all(self, timeout: float = 15.0,
                 names: Optional[Sequence[str]] = None) -> dict[str, int]:
        """
        Stop these nodes (default: every one still known); return their exit codes by name.

        Each gets SIGINT; one still running after `timeout` has its threads' stacks dumped to
        its log (STACK_DUMP_SIGNAL) and is then killed, so the log says where it hung.
        """
        names = list(self.processes) if names is None else list(names)
        for name in names:
            if self.processes[name].poll() is None:
                _signal_group(self.processes[name], signal.SIGINT)
        deadline = time.monotonic() + timeout
        codes = {}
        for name in names:
            process = self.processes.pop(name)
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, STACK_DUMP_SIGNAL)
                time.sleep(STACK_DUMP_WAIT_S)
                _signal_group(process, signal.SIGKILL)
                process.wait()
            codes[name] = process.returncode
        return codes


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
