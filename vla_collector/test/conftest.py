"""A test harness around a real vla_collector process: cameras, commands, joints, services."""

import pathlib
import re
import sys
import threading
import time

from action_msgs.msg import GoalStatus, GoalStatusArray
import cv2
from geometry_msgs.msg import PoseStamped
from humanoid_interfaces.srv import StartEpisode
import numpy as np
import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import (DurabilityPolicy, qos_profile_action_status_default,
                       qos_profile_sensor_data, QoSProfile, ReliabilityPolicy)
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import SetBool, Trigger

# pytest's importlib mode registers the folder vla_collector/ (this package's root, holding the
# Python package vla_collector/vla_collector/) as a namespace module named vla_collector, which
# hides the Python package from the tests: let the namespace reach the package's modules too.
_SHADOW = sys.modules.get('vla_collector')
if _SHADOW is not None and getattr(_SHADOW, '__file__', None) is None:
    _SHADOW.__path__.append(str(pathlib.Path(__file__).resolve().parents[1] / 'vla_collector'))

HEIGHT, WIDTH = 24, 32
TICK_S = 0.01          # commands and joint states at 100 Hz
CAMERA_EVERY = 5       # cameras at 20 Hz
CAMERAS = ('head', 'wrist')
RENEW_CLIENTS_AFTER = 5  # unanswered one-second calls before the service clients are replaced
PADDING = 4            # the wrist camera publishes bgr8 rows padded by this many bytes


def frame_pixels(camera: int, counter: int) -> np.ndarray:
    """Return the RGB frame `counter` of camera `camera`: random, with its identity in (0, 0)."""
    image = np.random.default_rng([camera, counter]).integers(
        0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[0, 0] = (counter & 0xFF, counter >> 8, camera)
    return image


class CollectorHarness:
    """Plays cameras, the commanding side and the robot around one vla_collector under test."""

    CAMERAS = CAMERAS
    HEIGHT, WIDTH = HEIGHT, WIDTH

    @staticmethod
    def frame_id(image: np.ndarray) -> int:
        """Return the counter a harness frame carries in its first pixel."""
        return int(image[0, 0, 0]) | int(image[0, 0, 1]) << 8

    @staticmethod
    def counts(message: str) -> dict:
        """Return the numbers of an episode summary line by what they count."""
        found = {
            'steps': r'(\d+) steps',
            'dropped': r'(\d+) dropped \(stale',
            'malformed': r'(\d+) malformed',
            'queue': r'(\d+) dropped \(write queue',
            'rejected': r'(\d+) rejected',
        }
        return {key: int(re.search(pattern, message).group(1)) for key, pattern in found.items()}

    def __init__(self, context, namespace: str) -> None:
        self.node = rclpy.create_node('collector_harness', context=context)
        self.ns = namespace
        self.t0 = self._now()
        self.compressed = False
        self.send_images = True
        self.send_commands = True
        self.send_joints = True
        self.malformed_frames = 0
        self.malformed_sent = 0
        # Frames by camera and counter: (stamp, RGB pixels, tick of the commands sent before it).
        self.published = {name: {} for name in CAMERAS}
        self._lock = threading.Lock()
        self._pubs = {}
        n = self.node
        self.pose = n.create_publisher(PoseStamped, f'{namespace}/right_target', 10)
        self.gripper = n.create_publisher(Float64, f'{namespace}/right_gripper', 10)
        self.joints = n.create_publisher(JointState, f'{namespace}/joint_states',
                                         qos_profile_sensor_data)
        self.status = n.create_publisher(GoalStatusArray,
                                         f'{namespace}/execute_vla_task/_action/status',
                                         qos_profile_action_status_default)
        self.instruction = n.create_publisher(
            String, f'{namespace}/vla_server/active_instruction',
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._create_clients()
        self.executor = MultiThreadedExecutor(num_threads=2, context=context)
        self.executor.add_node(n)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()
        self._running = threading.Event()
        self._publisher = None

    def _create_clients(self) -> None:
        """Create the clients of the collector's services."""
        n, service = self.node, f'{self.ns}/vla_collector'
        self.start_client = n.create_client(StartEpisode, f'{service}/start_episode')
        self.stop_client = n.create_client(SetBool, f'{service}/stop_episode')
        self.discard_client = n.create_client(Trigger, f'{service}/discard_episode')

    def _renew_clients(self) -> None:
        """
        Replace the service clients with new ones.

        Fast DDS can leave a client that talked to a SIGKILLed collector unmatched with the next
        one for longer than a test waits (seen once in CI: 30 s of unanswered calls while the
        new collector was ready); fresh endpoints are matched from scratch.
        """
        for client in (self.start_client, self.stop_client, self.discard_client):
            self.node.destroy_client(client)
        self._create_clients()

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    # ---- the collector's side of the graph ---------------------------------------------------

    def collector_args(self, data_dir, compressed: bool = False, **params) -> list[str]:
        """Return --ros-args for a collector wired to this harness's topics."""
        self.compressed = compressed
        values = {
            'data_dir': str(data_dir),
            'camera_topics': '[' + ', '.join(f'{self.ns}/{c}/image' for c in CAMERAS) + ']',
            'camera_names': '[' + ', '.join(CAMERAS) + ']',
            'compressed_images': compressed,
            'joint_states_topic': f'{self.ns}/joint_states',
            'right_hand_pose_topic': f'{self.ns}/right_target',
            'right_gripper_topic': f'{self.ns}/right_gripper',
            'sample_rate_hz': 10.0,
            'max_input_age_s': 0.2,
        }
        values.update(params)
        args = ['-r', f'__ns:={self.ns}']
        for name, value in values.items():
            if isinstance(value, bool):
                value = str(value).lower()
            args += ['-p', f'{name}:={value}']
        return args

    def start_publishing(self) -> None:
        """Publish cameras at 20 Hz, commands and joint states at 100 Hz, from a thread."""
        image_type = CompressedImage if self.compressed else Image
        self.cameras = [self.node.create_publisher(image_type, f'{self.ns}/{name}/image',
                                                   qos_profile_sensor_data) for name in CAMERAS]
        self._running.set()
        self._publisher = threading.Thread(target=self._publish_loop, daemon=True)
        self._publisher.start()

    def wait_connected(self, process, timeout: float = 30.0) -> bool:
        """
        Wait until the collector process answers its services and hears every harness topic.

        A collector killed before leaves its endpoints in the graph for a while, so a service
        or a subscription that merely shows up proves nothing: only an answer does.
        """
        deadline = time.monotonic() + timeout
        while 'ready' not in process.output:
            if time.monotonic() > deadline or process.process.poll() is not None:
                return False
            time.sleep(0.05)
        unanswered = 0
        while True:
            try:
                call(self.stop_client, SetBool.Request(data=False), timeout=1.0)
                break
            except TimeoutError:
                unanswered += 1
                if time.monotonic() > deadline:
                    return False
                if unanswered % RENEW_CLIENTS_AFTER == 0:
                    self._renew_clients()
        publishers = [*self.cameras, self.pose, self.gripper, self.joints]
        while not all(p.get_subscription_count() > 0 for p in publishers):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        time.sleep(0.5)  # Matching completes on the collector's side; inputs start to arrive.
        return True

    def _publish_loop(self) -> None:
        tick = 0
        next_tick = time.monotonic()
        while self._running.is_set():
            stamp = self.node.get_clock().now()
            value = stamp.nanoseconds * 1e-9 - self.t0
            if self.send_commands:
                pose = PoseStamped()
                pose.header.stamp = stamp.to_msg()
                pose.pose.position.x, pose.pose.position.y = value, float(tick)
                pose.pose.orientation.w = 1.0
                self.pose.publish(pose)
                self.gripper.publish(Float64(data=value))
            if self.send_joints:
                joints = JointState(name=['a', 'b', 'c'], position=[value, float(tick), 0.5])
                joints.header.stamp = stamp.to_msg()
                self.joints.publish(joints)
            if self.send_images and tick % CAMERA_EVERY == 0:
                # Stamped after the commands went out: they are the ones in force at the frame.
                self._publish_frames(tick // CAMERA_EVERY, self.node.get_clock().now(), tick)
            tick += 1
            next_tick += TICK_S
            time.sleep(max(0.0, next_tick - time.monotonic()))

    def _publish_frames(self, counter: int, stamp, tick: int) -> None:
        seconds = stamp.nanoseconds * 1e-9
        for index, (name, publisher) in enumerate(zip(CAMERAS, self.cameras)):
            pixels = frame_pixels(index, counter)
            if index == 0 and self.malformed_frames > 0:
                msg = self._malformed_msg()
                self.malformed_frames -= 1
                self.malformed_sent += 1
            elif self.compressed:
                ok, png = cv2.imencode('.png', pixels[:, :, ::-1])
                msg = CompressedImage(format='png', data=png.tobytes())
            elif index == 0:
                msg = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3,
                            data=pixels.tobytes())
            else:  # BGR with padded rows: the recorder must store the same RGB pixels.
                rows = np.zeros((HEIGHT, WIDTH * 3 + PADDING), np.uint8)
                rows[:, :WIDTH * 3] = pixels[:, :, ::-1].reshape(HEIGHT, -1)
                msg = Image(height=HEIGHT, width=WIDTH, encoding='bgr8',
                            step=WIDTH * 3 + PADDING, data=rows.tobytes())
            msg.header.stamp = stamp.to_msg()
            with self._lock:
                self.published[name][counter] = (seconds, pixels, tick)
            publisher.publish(msg)

    def _malformed_msg(self):
        if self.compressed:
            return CompressedImage(format='jpeg', data=b'not an image')
        if self.malformed_sent % 2:
            return Image(height=HEIGHT, width=WIDTH, encoding='yuv999', step=WIDTH * 3,
                         data=bytes(HEIGHT * WIDTH * 3))
        return Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3,
                     data=bytes(100))

    def frame(self, camera: str, counter: int):
        """Return (stamp, RGB pixels, tick of the commands sent just before) of a frame."""
        with self._lock:
            return self.published[camera][counter]

    def stop_publishing(self) -> None:
        """Stop the publishing thread."""
        self._running.clear()
        if self._publisher is not None:
            self._publisher.join(timeout=5.0)

    # ---- services and goals ------------------------------------------------------------------

    def start(self, instruction: str):
        """Call start_episode; return the response."""
        return call(self.start_client, StartEpisode.Request(instruction=instruction))

    def stop(self, success: bool = True):
        """Call stop_episode; return the response."""
        return call(self.stop_client, SetBool.Request(data=success), timeout=60.0)

    def discard(self):
        """Call discard_episode; return the response."""
        return call(self.discard_client, Trigger.Request())

    def publish_goals(self, goals: list[tuple[bytes, int, float]]) -> None:
        """Publish a goal status array from (uuid, status, accept time) triples."""
        msg = GoalStatusArray()
        for uuid, status, accepted in goals:
            entry = GoalStatus(status=status)
            entry.goal_info.goal_id.uuid = list(uuid)
            entry.goal_info.stamp.sec = int(accepted)
            entry.goal_info.stamp.nanosec = int((accepted % 1.0) * 1e9)
            msg.status_list.append(entry)
        self.status.publish(msg)

    def close(self) -> None:
        """Stop publishing and spinning; destroy the harness node."""
        self.stop_publishing()
        self.executor.shutdown()
        self.node.destroy_node()
        self._spinner.join(timeout=5.0)


def call(client, request, timeout: float = 20.0):
    """Call a service (spun by the harness thread) and return its response."""
    if not client.wait_for_service(timeout_sec=timeout):
        raise TimeoutError(f'{client.srv_name} is not available')
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        raise TimeoutError(f'{client.srv_name} did not answer within {timeout} s')
    return future.result()


@pytest.fixture
def harness(rclpy_context, request):
    """Yield a CollectorHarness in a namespace of the test's own."""
    namespace = '/c' + format(abs(hash(request.node.name)) % 10**8, 'd')
    h = CollectorHarness(rclpy_context, namespace)
    yield h
    h.close()


@pytest.fixture
def start_collector(harness, start_node):
    """Start a real vla_collector process wired to the harness; wait until it is connected."""
    def start(data_dir, **params):
        process = start_node('vla_collector', 'vla_collector',
                             harness.collector_args(data_dir, **params))
        if harness._publisher is None:
            harness.start_publishing()
        if not harness.wait_connected(process, 60.0):
            process.stop()
            pytest.fail(f'vla_collector never connected:\n{process.output}')
        return process
    return start
