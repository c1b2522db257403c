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
Send one instruction to the VLA server and print its feedback and result.

For machines without the `ros2` command line. Exit codes: 0 the task succeeded (a success check
confirmed it), 1 the goal failed (refused, aborted, canceled), 2 no server or no answer,
3 max_steps reached without a confirmed success.
"""

import argparse
import sys
import threading

from humanoid_interfaces.action import ExecuteVLATask
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor

Result = ExecuteVLATask.Result


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the client's own arguments (ROS arguments are stripped before)."""
    parser = argparse.ArgumentParser(prog='vla_client', description=__doc__.split('\n\n')[0])
    parser.add_argument('instruction', help='what the robot should do, in plain language')
    parser.add_argument('--max-steps', type=int, default=0,
                        help="control ticks at most (0 = the server's default)")
    parser.add_argument('--action', default='execute_vla_task', help='action server name')
    parser.add_argument('--server-timeout', type=float, default=30.0,
                        help='seconds to wait for the server to appear')
    parser.add_argument('--result-timeout', type=float, default=600.0,
                        help='seconds to wait for the result')
    parser.add_argument('--quiet', action='store_true', help='print the result only')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Send the goal, stream feedback lines, print the result; return the exit code."""
    node = rclpy.create_node('vla_client')
    client = ActionClient(node, ExecuteVLATask, args.action)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        if not client.wait_for_server(timeout_sec=args.server_timeout):
            print(f'no action server {args.action!r} within {args.server_timeout} s',
                  file=sys.stderr)
            return 2
        goal = ExecuteVLATask.Goal(instruction=args.instruction, max_steps=args.max_steps)
        handle = _wait(client.send_goal_async(goal, feedback_callback=None if args.quiet
                                              else _print_feedback), args.server_timeout)
        if handle is None or not handle.accepted:
            print('goal rejected by the server', file=sys.stderr)
            return 1
        response = _wait(handle.get_result_async(), args.result_timeout)
        if response is None:
            print(f'no result within {args.result_timeout} s', file=sys.stderr)
            return 2
        return _report(response.result)
    finally:
        executor.shutdown()
        spinner.join(timeout=5.0)
        client.destroy()
        node.destroy_node()


def _print_feedback(message) -> None:
    f = message.feedback
    p = f.commanded_pose.pose.position
    print(f'step {f.current_step:4d}  progress {f.progress:5.1%}  '
          f'target ({p.x:+.3f}, {p.y:+.3f}, {p.z:+.3f})  inference {f.inference_time_ms:6.1f} ms',
          flush=True)


def _report(result) -> int:
    names = {getattr(Result, n): n for n in dir(Result)
             if n.isupper() and isinstance(getattr(Result, n), int)}
    print(f'result: {names.get(result.error_code, result.error_code)} '
          f'success={result.success} steps={result.steps_executed}: {result.message}', flush=True)
    if result.success:
        return 0
    return 3 if result.error_code == Result.MAX_STEPS_REACHED else 1


def _wait(future, timeout: float):
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    return future.result() if done.wait(timeout) else None


def main(argv=None) -> int:
    """Entry point of the vla_client executable."""
    rclpy.init(args=argv)
    try:
        args = parse_args(rclpy.utilities.remove_ros_args(argv if argv is not None
                                                          else sys.argv)[1:])
        return run(args)
    except KeyboardInterrupt:
        return 1
    finally:
        rclpy.try_shutdown()
