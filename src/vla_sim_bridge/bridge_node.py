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
The simulation bridge node: a MuJoCo G1 at a table, behind the topics a robot would offer.

It publishes the head camera, joint states, the measured hand pose and /clock; it takes target
hand poses and gripper commands on the same topics the VLA server publishes; it offers
~/reset (humanoid_interfaces/ResetSimulation), ~/task_success (std_srvs/Trigger: the success
check the server polls) and ~/run_expert (std_srvs/Trigger: the scripted expert drives the robot
by publishing on the command topics, so the recorder records it like teleoperation).
Physics runs in its own thread, paced to real_time_factor; every simulator access holds one lock.
"""

import dataclasses
import threading
import time
from typing import Optional

from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from humanoid_interfaces.srv import ResetSimulation
from humanoid_vla.actions import Pose
from humanoid_vla.image_conversion import rgb8_to_buffer
from humanoid_vla.sim.episode_runner import SimEnvironment
from humanoid_vla.sim.expert import ScriptedExpert
from humanoid_vla.sim.tasks import sample_task
import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from vla_sim_bridge.parameters import declare_parameters


def sim_stamp(seconds: float) -> Time:
    """Return simulated seconds as a ROS time stamp."""
    whole = int(seconds)
    return Time(sec=whole, nanosec=int(round((seconds - whole) * 1e9)) % 1_000_000_000)


class SimBridgeNode(Node):
    """Steps the simulation in real time and connects it to ROS topics and services."""

    def __init__(self) -> None:
        super().__init__('vla_sim')
        self.params = p = declare_parameters(self)
        self.env = SimEnvironment(image_size=p['image_size'])
        self._lock = threading.Lock()
        self._command: Optional[np.ndarray] = None
        # Inputs from callbacks, picked up by the physics thread: a callback never waits for the
        # simulator lock, which the physics thread holds most of the time.
        self._pending_pose: Optional[np.ndarray] = None
        self._pending_gripper: Optional[float] = None
        self._task_done = False
        self.rejected_commands = 0
        self._reset(p['seed'], p['task'], p['split'], '')

        inputs = MutuallyExclusiveCallbackGroup()
        self.create_subscription(PoseStamped, p['right_hand_pose_topic'], self._on_pose, 10,
                                 callback_group=inputs)
        self.create_subscription(Float64, p['right_gripper_topic'], self._on_gripper, 10,
                                 callback_group=inputs)
        self.camera_pub = self.create_publisher(Image, p['camera_topic'], qos_profile_sensor_data)
        self.joints_pub = self.create_publisher(JointState, p['joint_states_topic'],
                                                qos_profile_sensor_data)
        self.hand_pub = self.create_publisher(PoseStamped, p['right_hand_state_topic'], 10)
        self.clock_pub = self.create_publisher(Clock, '/clock', 10) if p['publish_clock'] \
            else None
        self.expert_pose_pub = self.create_publisher(PoseStamped, p['right_hand_pose_topic'], 10)
        self.expert_gripper_pub = self.create_publisher(Float64, p['right_gripper_topic'], 10)
        services = ReentrantCallbackGroup()
        self.create_service(ResetSimulation, '~/reset', self._on_reset, callback_group=services)
        self.create_service(Trigger, '~/task_success', self._on_success,
                            callback_group=services)
        self.create_service(Trigger, '~/run_expert', self._on_run_expert,
                            callback_group=services)
        self._running = True
        self._next_frame = self._next_joints = 0.0
        self._deadline = time.monotonic()
        self._thread = threading.Thread(target=self._physics_loop, name='physics', daemon=True)
        self._thread.start()
        self.get_logger().info(
            f'vla_sim ready: task {self.env.task.family!r}, instruction '
            f"{self.env.task.instruction!r}, camera {p['camera_topic']} at "
            f"{p['camera_rate_hz']} Hz, real_time_factor {p['real_time_factor']}")

    # ---- simulation ------------------------------------------------------------------------

    def _reset(self, seed: int, family: str, split: str, instruction: str) -> str:
        task = sample_task(seed, family or None, split or 'train')
        if instruction:
            task = dataclasses.replace(task, instruction=instruction)
        with self._lock:
            self.env.reset_task(task)
            self._command = self._hold_still()
            self._pending_pose = self._pending_gripper = None
            self._task_done = False
            self._next_frame = self._next_joints = 0.0
        return task.instruction

    def _hold_still(self) -> np.ndarray:
        """Return the command that keeps the hand where it is, gripper open."""
        position, orientation = self.env.world.hand_pose('right')
        return np.concatenate([position, orientation, [0.0]])

    def _physics_loop(self) -> None:
        """Step, render and publish until shutdown; the GL context lives and dies here."""
        try:
            while self._running and rclpy.ok(context=self.context):
                self._physics_iteration()
        except Exception as error:  # noqa: BLE001 - after shutdown publishing fails; else log
            if self._running and rclpy.ok(context=self.context):
                self.get_logger().error(f'physics loop stopped: {error!r}')
        finally:
            with self._lock:
                self.env.close()

    def _physics_iteration(self) -> None:
        p = self.params
        with self._lock:
            self._take_pending_commands()
            self.env.apply_action(self._command, sim_seconds=p['step_seconds'])
            self._task_done = bool(self.env.success())
            now = self.env.world.time
            image = self.env.world.render(size=p['image_size']) if now >= self._next_frame \
                else None
            joints = (self.env.world.joint_names(), self.env.world.joint_positions()) \
                if now >= self._next_joints else None
            hand = self.env.world.hand_pose('right') if joints is not None else None
        stamp = sim_stamp(now)
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=stamp))
        if image is not None:
            self._next_frame = now + 1.0 / p['camera_rate_hz']
            self._publish_image(image, stamp)
        if joints is not None:
            self._next_joints = now + 1.0 / p['joint_states_rate_hz']
            self._publish_joints(joints, hand, stamp)
        pause = 0.001  # even when behind, let services that need the simulator take the lock
        if p['real_time_factor'] > 0:
            # Pace wall time to simulated time; after a stall, resume rather than race ahead.
            self._deadline = max(self._deadline + p['step_seconds'] / p['real_time_factor'],
                                 time.monotonic() - 0.1)
            pause = max(pause, self._deadline - time.monotonic())
        time.sleep(pause)

    def _take_pending_commands(self) -> None:
        pose, self._pending_pose = self._pending_pose, None
        gripper, self._pending_gripper = self._pending_gripper, None
        if pose is not None:
            self._command = np.concatenate([pose, self._command[7:]])
        if gripper is not None:
            self._command = np.concatenate([self._command[:7], [gripper]])

    def _publish_image(self, image: np.ndarray, stamp: Time) -> None:
        data, step = rgb8_to_buffer(image)
        msg = Image(height=image.shape[0], width=image.shape[1], encoding='rgb8', step=step,
                    data=data)
        msg.header.stamp, msg.header.frame_id = stamp, 'head_camera'
        self.camera_pub.publish(msg)

    def _publish_joints(self, joints, hand, stamp: Time) -> None:
        names, positions = joints
        msg = JointState(name=list(names), position=[float(v) for v in positions])
        msg.header.stamp = stamp
        self.joints_pub.publish(msg)
        self.hand_pub.publish(self._pose_msg(Pose(*hand), stamp))

    def _pose_msg(self, pose: Pose, stamp: Time) -> PoseStamped:
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self.params['frame_id']
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, pose.position)
        (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
         msg.pose.orientation.w) = map(float, pose.orientation)
        return msg

    # ---- commands ----------------------------------------------------------------------------

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        values = np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])
        if msg.header.frame_id not in ('', self.params['frame_id']) or \
                not np.all(np.isfinite(values)) or np.linalg.norm(values[3:]) < 1e-6:
            self.rejected_commands += 1
            self.get_logger().warning(
                f'ignoring target pose in frame {msg.header.frame_id!r} with values {values} '
                f'({self.rejected_commands} so far)', throttle_duration_sec=2.0)
            return
        self._pending_pose = values

    def _on_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            self.rejected_commands += 1
            return
        self._pending_gripper = float(np.clip(msg.data, 0.0, 1.0))

    # ---- services ----------------------------------------------------------------------------

    def _on_reset(self, request, response):
        try:
            response.instruction_used = self._reset(request.seed, request.task, request.split,
                                                    request.instruction)
        except (ValueError, KeyError) as error:
            response.accepted, response.message = False, str(error)
            return response
        response.accepted = True
        response.message = f'seed {request.seed}: {self.env.task.family}'
        self.get_logger().info(f'reset: {response.message}: {response.instruction_used!r}')
        return response

    def _on_success(self, request, response):
        response.success = self._task_done  # checked by the physics thread at every step
        response.message = 'task done' if response.success else 'task not done'
        return response

    def _on_run_expert(self, request, response):
        """Drive the robot with the scripted expert through the command topics until done."""
        p = self.params
        with self._lock:
            expert = ScriptedExpert(self.env.world, self.env.task, 'right')
            next_time = self.env.world.time
        steps, succeeded = 0, False
        while steps < p['expert_max_steps'] and not expert.done and rclpy.ok(
                context=self.context):
            while self._sim_time() < next_time:
                time.sleep(0.002)
            with self._lock:
                action = expert.act()
                now = self.env.world.time
            next_time = now + 1.0 / p['expert_rate_hz']
            stamp = sim_stamp(now)
            self.expert_pose_pub.publish(self._pose_msg(Pose(action[:3], action[3:7]), stamp))
            self.expert_gripper_pub.publish(Float64(data=float(action[7])))
            steps += 1
            succeeded = self._task_done
            if succeeded:
                break
        response.success = succeeded
        response.message = f'expert ran {steps} steps; task {"done" if succeeded else "not done"}'
        return response

    def _sim_time(self) -> float:
        with self._lock:
            return self.env.world.time

    def shutdown(self) -> None:
        """Stop the physics thread and free the renderer."""
        self._running = False
        self._thread.join(timeout=5.0)
