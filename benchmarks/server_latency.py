"""
Measure the VLA server at 30 Hz with the default model on this CPU.

Prints the achieved control rate, the camera-image-to-published-pose latency (median, p99), the
server's per-tick processing time, and the same policy called directly on the same frame in the
same run; the difference is the cost of the ROS path (goal: at most 10 %).

Run: tools/run_in_env.sh python benchmarks/server_latency.py [--steps 300]
"""

import argparse
import os
import pathlib
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time

from ament_index_python.packages import get_package_prefix
from geometry_msgs.msg import PoseStamped
from humanoid_interfaces.action import ExecuteVLATask
from humanoid_vla.actions import ActionSpec
from humanoid_vla.checkpoint import save_untrained_checkpoint
from humanoid_vla.policies.base import Observation
from humanoid_vla.policies.custom import CustomVLAPolicy
import numpy as np
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
import torch

INSTRUCTION = 'pick up the red cup'
SPEC = ActionSpec(('right_hand_pose', 'right_gripper'))


def percentile(values, q):
    """Return the q-th percentile of a list of numbers."""
    return float(np.percentile(np.asarray(values), q))


def direct_policy_ms(checkpoint: pathlib.Path, frame: np.ndarray, calls: int) -> list[float]:
    """Time CustomVLAPolicy.predict on the frame, as the server would call it."""
    policy = CustomVLAPolicy(checkpoint)
    observation = Observation(frame, INSTRUCTION)
    for _ in range(10):
        policy.predict(observation)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        policy.predict(observation)
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def ros_path(checkpoint: pathlib.Path, frame: np.ndarray, steps: int, calls: int) -> dict:
    """
    Run one goal through a real server process; return latencies, rate and tick times.

    The direct policy calls are timed in the same run, before and after the goal, while the
    camera publishes and the server receives frames: both paths see the same machine load.
    """
    server = subprocess.Popen(
        [f"{get_package_prefix('vla_server')}/lib/vla_server/vla_server", '--ros-args',
         '-p', 'policy_backend:=custom', '-p', f'policy_checkpoint:={checkpoint}',
         '-p', 'control_rate_hz:=30.0', '-p', f'max_steps_limit:={max(steps, 2000)}',
         '-r', '/head_camera/image_raw:=/bench/camera'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rclpy.init()
    node = rclpy.create_node('server_latency_bench')
    camera = node.create_publisher(Image, '/bench/camera', qos_profile_sensor_data)
    received: list[tuple[float, float]] = []

    def on_pose(msg: PoseStamped) -> None:
        now = node.get_clock().now().nanoseconds * 1e-9
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        received.append((now, now - stamp))

    def publish_frame() -> None:
        msg = Image(height=frame.shape[0], width=frame.shape[1], encoding='rgb8',
                    step=frame.shape[1] * 3, data=frame.tobytes())
        msg.header.stamp = node.get_clock().now().to_msg()
        camera.publish(msg)

    node.create_subscription(PoseStamped, '/right_hand/target_pose', on_pose, 100)
    node.create_timer(1.0 / 30.0, publish_frame)
    client = ActionClient(node, ExecuteVLATask, 'execute_vla_task')
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        if not client.wait_for_server(timeout_sec=60.0):
            raise RuntimeError('vla_server did not come up')
        time.sleep(1.0)
        direct = direct_policy_ms(checkpoint, frame, calls // 2)
        result = _run_goal(client, steps)
        direct += direct_policy_ms(checkpoint, frame, calls // 2)
    finally:
        executor.shutdown()
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown()
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=20)
    tick = re.search(r'tick median ([\d.]+) ms, p99 ([\d.]+) ms', result.message)
    if tick is None:
        raise RuntimeError(f'the goal ran no tick: {result.message}')
    arrivals = [t for t, _ in received]
    return {
        'latency_ms': [1000.0 * latency for _, latency in received[5:]],
        'periods_ms': [1000.0 * b - 1000.0 * a for a, b in zip(arrivals[5:], arrivals[6:])],
        'tick_median_ms': float(tick.group(1)), 'tick_p99_ms': float(tick.group(2)),
        'steps': result.steps_executed, 'message': result.message, 'direct_ms': direct,
    }


def _run_goal(client: ActionClient, steps: int):
    done = threading.Event()
    future = client.send_goal_async(ExecuteVLATask.Goal(instruction=INSTRUCTION,
                                                        max_steps=steps))
    future.add_done_callback(lambda _: done.set())
    done.wait(30.0)
    done.clear()
    result_future = future.result().get_result_async()
    result_future.add_done_callback(lambda _: done.set())
    done.wait(steps / 30.0 * 4 + 60.0)
    return result_future.result().result


def main() -> None:
    """Run the benchmark and print plain lines."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=300, help='control ticks of the goal')
    parser.add_argument('--calls', type=int, default=200, help='direct policy calls')
    args = parser.parse_args()
    torch.set_num_threads(2)
    # Large frames need a larger shared-memory segment than Fast DDS's default (see the file).
    os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                          str(pathlib.Path(__file__).resolve().parents[1] / 'config' /
                              'fastdds_large_frames.xml'))
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = save_untrained_checkpoint(pathlib.Path(tmp) / 'ckpt', SPEC)
        ros = ros_path(checkpoint, frame, args.steps, args.calls)
    direct = ros['direct_ms']
    direct_median = statistics.median(direct)
    rate = 1000.0 / statistics.median(ros['periods_ms'])
    print(f"frames: 480x640 rgb8 at 30 Hz, control_rate_hz 30, {ros['steps']} steps")
    if ros['steps'] < args.steps:
        print(f"goal ended early: {ros['message']}")
    print(f'control rate: median {rate:.1f} Hz (target 30.0)')
    print(f"image-to-pose latency: median {statistics.median(ros['latency_ms']):.1f} ms, "
          f"p99 {percentile(ros['latency_ms'], 99):.1f} ms (includes waiting for the next tick)")
    print('server tick (image conversion + policy + safety + publish): median '
          f"{ros['tick_median_ms']:.1f} ms, p99 {ros['tick_p99_ms']:.1f} ms")
    print(f'direct policy.predict on the same frame, same load: median {direct_median:.1f} ms, '
          f'p99 {percentile(direct, 99):.1f} ms')
    overhead = (ros['tick_median_ms'] - direct_median) / direct_median
    print(f'ROS path overhead (tick vs direct, medians): {overhead:+.1%} (goal <= 10%)')


if __name__ == '__main__':
    main()
