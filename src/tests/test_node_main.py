"""A node spun by run_node stops when its context is shut down, even if nothing wakes it."""

import subprocess
import sys
import time

import pytest

pytest.importorskip('rclpy')
pytestmark = [pytest.mark.ros]

# The context is shut down the way rclpy's SIGINT thread does it (rcl_shutdown of the handle,
# no Python on_shutdown callbacks, so no executor.wake), after the executor is already waiting:
# the wake-up that comes first on a real SIGINT was consumed by an executor that looked too
# early, which is what left demo nodes running until they were killed.
PROGRAM = """
import threading, time
import rclpy
from vla_ros_common.node_main import run_node

def create_node():
    node = rclpy.create_node('node_main_test')
    threading.Timer(1.0, node.context.handle.shutdown).start()
    return node

started = time.monotonic()
run_node(create_node, 2)
print(f'stopped after {time.monotonic() - started:.1f} s', flush=True)
"""


def test_a_context_shut_down_without_a_wake_up_still_ends_spinning():
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, '-c', PROGRAM], capture_output=True,
                                text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail('run_node kept spinning after its context was shut down')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'stopped after' in result.stdout
    assert time.monotonic() - started < 20
