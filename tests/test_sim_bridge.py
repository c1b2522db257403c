"""The MuJoCo bridge node publishes the camera, moves the hand on command and checks tasks."""

import shutil
import threading
import time

import pytest

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('mujoco')
from geometry_msgs.msg import PoseStamped  # noqa: E402, I100 (after the skips)
from humanoid_interfaces.srv import ResetSimulation  # noqa: E402
import numpy as np  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


class BridgeProbe:
    """Watches the bridge's outputs and calls its services."""

    def __init__(self, context) -> None:
        self.node = rclpy.create_node('bridge_probe', context=context)
        self.images: list[Image] = []
        self.joints: list[JointState] = []
        self.hand: list[PoseStamped] = []
        self.node.create_subscription(Image, '/head_camera/image_raw', self.images.append,
                                      qos_profile_sensor_data)
        self.node.create_subscription(JointState, '/joint_states', self.joints.append,
                                      qos_profile_sensor_data)
        self.node.create_subscription(PoseStamped, '/right_hand/current_pose', self.hand.append,
                                      10)
        self.target = self.node.create_publisher(PoseStamped, '/right_hand/target_pose', 10)
        self.executor = MultiThreadedExecutor(num_threads=2, context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def call(self, srv_type, name: str, request, timeout: float = 30.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), name
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        assert done.wait(timeout), f'{name} did not answer'
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=5.0)
        self.node.destroy_node()


@pytest.fixture
def probe(rclpy_context, start_process, wait_until):
    executable = shutil.which('vla_sim_bridge')
    assert executable, 'vla_sim_bridge is not installed (make setup)'
    process = start_process([executable, '--ros-args', '-p', 'seed:=1', '-p', 'task:=touch'])
    watcher = BridgeProbe(rclpy_context)
    if not wait_until(lambda: len(watcher.images) >= 3 or process.process.poll() is not None,
                      timeout=60.0):
        pytest.fail(f'no camera images from the bridge:\n{process.output}')
    yield watcher
    watcher.close()
    assert process.stop() == 0, process.output


def test_bridge_publishes_non_blank_images_and_joint_states(probe, wait_until):
    image = probe.images[-1]
    pixels = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
    assert (image.encoding, image.height, image.width) == ('rgb8', 224, 224)
    assert pixels.std() > 10.0
    assert wait_until(lambda: len(probe.joints) > 5, timeout=10.0)
    assert len(probe.joints[-1].name) == len(probe.joints[-1].position) > 20


def test_hand_moves_to_a_published_target(probe, wait_until):
    assert wait_until(lambda: len(probe.hand) > 0, timeout=10.0)
    start = probe.hand[-1]
    target = PoseStamped()
    target.header.frame_id = 'base_link'
    target.pose = start.pose
    target.pose.position.z = start.pose.position.z + 0.05
    for _ in range(5):
        probe.target.publish(target)
        time.sleep(0.1)

    def reached():
        return abs(probe.hand[-1].pose.position.z - target.pose.position.z) < 0.01

    assert wait_until(reached, timeout=10.0), probe.hand[-1].pose.position


def test_reset_sets_the_task_and_the_expert_completes_it(probe):
    reply = probe.call(ResetSimulation, '/vla_sim/reset',
                       ResetSimulation.Request(seed=4, task='touch'))
    assert reply.accepted and reply.instruction_used
    assert not probe.call(Trigger, '/vla_sim/task_success', Trigger.Request()).success
    expert = probe.call(Trigger, '/vla_sim/run_expert', Trigger.Request(), timeout=60.0)
    assert expert.success, expert.message
    assert probe.call(Trigger, '/vla_sim/task_success', Trigger.Request()).success
    refused = probe.call(ResetSimulation, '/vla_sim/reset',
                         ResetSimulation.Request(seed=4, task='juggle'))
    assert not refused.accepted and 'juggle' in refused.message
