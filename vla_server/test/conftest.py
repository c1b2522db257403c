"""A test harness around a real vla_server process: camera, pose sink, action client."""

import json
import threading
import time

from geometry_msgs.msg import PoseStamped
from humanoid_interfaces.action import ExecuteVLATask
import numpy as np
import pytest
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger


class ServerHarness:
    """Plays camera, robot and client around one vla_server under test."""

    def __init__(self, context, namespace: str) -> None:
        self.node = rclpy.create_node('server_harness', context=context)
        self.ns = namespace
        self.publish_images = True
        self.image_encoding = 'rgb8'
        self.joint_positions: list[float] | None = None  # None: no joint states published
        self.poses: list[tuple[float, PoseStamped]] = []
        self.grippers: list[float] = []
        self.success_after_calls = None
        self.success_calls = 0
        self._lock = threading.Lock()
        self.camera = self.node.create_publisher(Image, f'{namespace}/camera',
                                                 qos_profile_sensor_data)
        self.joints = self.node.create_publisher(JointState, f'{namespace}/joints', 10)
        self.node.create_subscription(PoseStamped, f'{namespace}/right_target',
                                      self._on_pose, 50)
        self.node.create_subscription(Float64, f'{namespace}/right_gripper',
                                      lambda m: self.grippers.append(m.data), 50)
        self.node.create_service(Trigger, f'{namespace}/task_success', self._on_success)
        self.node.create_timer(1.0 / 30.0, self._publish_image)
        self.client = ActionClient(self.node, ExecuteVLATask, f'{namespace}/execute_vla_task')
        # Feedback is read from the action's feedback topic, not through the client's callback:
        # rclpy's ActionClient forgets a goal's feedback callback when the result arrives, and
        # feedback (a topic) and result (a service) arrive in no fixed order.
        self._feedback_by_goal: dict[bytes, list] = {}
        self.node.create_subscription(
            ExecuteVLATask.Impl.FeedbackMessage,
            f'{namespace}/execute_vla_task/_action/feedback', self._on_feedback, 100)
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def server_args(self, **params) -> list[str]:
        """Return --ros-args for a server wired to this harness's topics."""
        args = ['-r', f'__ns:={self.ns}', '-r', f'/head_camera/image_raw:={self.ns}/camera',
                '-r', f'/right_hand/target_pose:={self.ns}/right_target',
                '-r', f'/right_hand/gripper_command:={self.ns}/right_gripper',
                '-r', f'/right_hand/current_pose:={self.ns}/right_state',
                '-r', f'/joint_states:={self.ns}/joints']
        defaults = {'policy_backend': 'scripted', 'control_rate_hz': 20.0,
                    'camera_timeout_s': 2.0}
        defaults.update(params)
        for name, value in defaults.items():
            if isinstance(value, bool):
                value = str(value).lower()
            elif isinstance(value, str) and value.startswith('{'):
                value = json.dumps(value)  # a YAML string, not a mapping
            args += ['-p', f'{name}:={value}']
        return args

    def _publish_image(self) -> None:
        if self.joint_positions is not None:
            self.joints.publish(JointState(position=list(self.joint_positions)))
        if not self.publish_images:
            return
        msg = Image(height=24, width=32, encoding=self.image_encoding, step=32 * 3)
        msg.data = np.full((24, 32, 3), 120, np.uint8).tobytes()
        if self.image_encoding == 'broken':
            msg.encoding, msg.data = 'rgb8', b'\x00' * 10
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.camera.publish(msg)

    def _on_feedback(self, msg) -> None:
        with self._lock:
            self._feedback_by_goal.setdefault(bytes(msg.goal_id.uuid), []).append(msg.feedback)

    def _on_pose(self, msg: PoseStamped) -> None:
        with self._lock:
            self.poses.append((time.monotonic(), msg))

    def _on_success(self, request, response):
        self.success_calls += 1
        response.success = (self.success_after_calls is not None
                            and self.success_calls >= self.success_after_calls)
        response.message = 'done' if response.success else 'not yet'
        return response

    def wait_for_server(self, timeout: float = 30.0) -> bool:
        """Wait until the action server is discovered."""
        return self.client.wait_for_server(timeout_sec=timeout)

    def send(self, instruction: str, max_steps: int, feedback: list | None = None):
        """Send a goal; return its goal handle; ``feedback`` (if given) fills as it arrives."""
        handle = wait_future(self.client.send_goal_async(
            ExecuteVLATask.Goal(instruction=instruction, max_steps=max_steps)), 10.0)
        if feedback is not None:
            with self._lock:  # what came before this point, then every later message
                goal = bytes(handle.goal_id.uuid)
                feedback.extend(self._feedback_by_goal.get(goal, []))
                self._feedback_by_goal[goal] = feedback
        return handle

    def run(self, instruction: str, max_steps: int, timeout: float = 30.0):
        """Send a goal and wait for its result; return (result, feedback list)."""
        feedback: list = []
        handle = self.send(instruction, max_steps, feedback)
        assert handle.accepted
        result = self.result(handle, timeout)
        # Feedback is a topic and the result a service: the last feedback may arrive later.
        deadline = time.monotonic() + 5.0
        while len(feedback) < result.steps_executed and time.monotonic() < deadline:
            time.sleep(0.005)
        return result, feedback

    def result(self, handle, timeout: float = 30.0):
        """Wait for the result of an accepted goal."""
        return wait_future(handle.get_result_async(), timeout).result

    def pose_count(self) -> int:
        """Return how many target poses arrived so far."""
        with self._lock:
            return len(self.poses)

    def close(self) -> None:
        """Stop spinning and destroy the harness node."""
        self.executor.shutdown()
        self._spinner.join(timeout=5.0)
        self.client.destroy()
        self.node.destroy_node()


def wait_future(future, timeout: float):
    """Block until an rclpy future is done (spun by another thread); return its result."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        raise TimeoutError(f'no answer within {timeout} s')
    return future.result()


@pytest.fixture
def harness(rclpy_context, request):
    """Yield a ServerHarness in a namespace of the test's own."""
    namespace = '/t' + format(abs(hash(request.node.name)) % 10**8, 'd')
    h = ServerHarness(rclpy_context, namespace)
    yield h
    h.close()


@pytest.fixture
def start_server(harness, start_node, wait_until):
    """Start a real vla_server process wired to the harness; wait until it serves."""
    def start(**params):
        process = start_node('vla_server', 'vla_server', harness.server_args(**params))
        if not harness.wait_for_server(30.0):
            process.stop()
            pytest.fail(f'vla_server never offered its action:\n{process.output}')
        # Goals sent before the first frame reaches the server would end in CAMERA_TIMEOUT.
        wait_until(lambda: harness.camera.get_subscription_count() > 0, timeout=10.0)
        time.sleep(0.2)
        return process
    return start
