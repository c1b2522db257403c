"""Test setup shared by every package of the workspace.

Isolates the ROS graph of a test run from other ROS traffic on the machine, and offers the
fixtures that start real rclpy nodes and real node processes.
"""

import importlib
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time
from typing import Iterator, Optional

from humanoid_vla.process_diagnostics import STACK_DUMP_SIGNAL
import pytest

WORKSPACE = pathlib.Path(__file__).resolve().parent
# How much of a node's output a test shows when the node did not exit 0 on SIGINT.
STOP_OUTPUT_CHARS = 6000

# pytest's importlib mode registers the package folders vla_server/ and vla_collector/ as
# namespace modules when it collects their tests, hiding the installed packages of the same
# names from later tests; importing the real packages first keeps them in place.
for _package in ('vla_server', 'vla_collector'):
    try:
        importlib.import_module(_package)
    except ImportError:
        pass

# Only this machine, and a domain of our own, unless the caller already chose one.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))


@pytest.fixture
def workspace() -> pathlib.Path:
    """Return the workspace root (where config/ and launch/ live)."""
    return WORKSPACE


@pytest.fixture
def rclpy_context():
    """Yield an initialised rclpy Context of its own, shut down after the test."""
    rclpy = pytest.importorskip('rclpy')
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()


def node_executable(package: str, executable: str) -> str:
    """Return the path of a ROS package's executable, as `ros2 run` would find it."""
    from ament_index_python.packages import get_package_prefix
    path = pathlib.Path(get_package_prefix(package)) / 'lib' / package / executable
    if not path.exists():
        pytest.fail(f'{path} is missing: build the workspace first (make setup)')
    return str(path)


class NodeProcess:
    """A node executable in its own process group, stopped by SIGINT like Ctrl-C would."""

    def __init__(self, argv: list[str], cwd: Optional[pathlib.Path] = None) -> None:
        self.argv = argv
        # A file, not a pipe: a pipe nobody reads fills up and blocks the node's logging.
        self._log = tempfile.TemporaryFile(mode='w+')
        self.process = subprocess.Popen(
            argv, cwd=cwd or WORKSPACE, stdout=self._log, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)

    @property
    def output(self) -> str:
        """Return everything the process printed so far."""
        self._log.seek(0)
        return self._log.read()

    def stop(self, timeout: float = 30.0) -> int:
        """Send SIGINT to the group, wait; SIGKILL after the timeout. Return the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Nodes dump every thread's stack on this signal (humanoid_vla.process_diagnostics):
            # the output then shows where the process was stuck.
            os.kill(self.process.pid, STACK_DUMP_SIGNAL)
            time.sleep(2.0)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            print(f'{self.argv[0]} did not stop within {timeout} s of SIGINT; killed')
        if self.process.returncode != 0:
            print(f'{self.argv[0]} exited {self.process.returncode}; its last output:\n'
                  f'{self.output[-STOP_OUTPUT_CHARS:]}')
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, as far as the node can tell)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def start_process() -> Iterator:
    """Start commands in their own process groups; every one is killed after the test."""
    started: list[NodeProcess] = []

    def start(argv: list[str], cwd: Optional[pathlib.Path] = None) -> NodeProcess:
        started.append(NodeProcess(argv, cwd=cwd))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.kill()


@pytest.fixture
def start_node(start_process) -> Iterator:
    """Start node executables by package and name, with ROS arguments."""
    def start(package: str, executable: str, ros_args: list[str] = (),
              cwd: Optional[pathlib.Path] = None) -> NodeProcess:
        return start_process([node_executable(package, executable), '--ros-args', *ros_args],
                             cwd=cwd)

    return start


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll predicate until it is true or the timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture
def python_executable() -> str:
    """Return the interpreter running the tests (the venv's, where there is one)."""
    return sys.executable


@pytest.fixture
def wait_until():
    """Return wait_for: poll a predicate until true or a timeout."""
    return wait_for
