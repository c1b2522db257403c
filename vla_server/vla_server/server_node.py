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
The VLA server node: serves ExecuteVLATask goals with a policy.

Subscriptions only cache the newest image and joint state (in their own callback group); the
control loop runs inside the execute callback on a MultiThreadedExecutor, so the policy never runs
in a subscription callback. Decisions (goal checks, the control tick, the safety filter) live in
the core library; this node moves messages in and out.
"""

from dataclasses import dataclass, field
import json
import sys
import threading
import time
import traceback
from typing import Optional

from geometry_msgs.msg import PoseStamped, Twist
from humanoid_interfaces.action import ExecuteVLATask
from humanoid_vla.actions import ActionSpec, HumanoidAction, Pose
from humanoid_vla.control.controller import goal_start_command, PolicyError, VLAController
from humanoid_vla.control.goal_check import check_goal, GoalDecision, GoalLimits
from humanoid_vla.control.goal_stats import GoalStats
from humanoid_vla.control.policy_loader import load_policy
from humanoid_vla.image_conversion import ImageConversionError
from humanoid_vla.policies.base import Observation
from humanoid_vla.safety import SafetyFilter, SafetyLimits, UnsafeActionError
import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger
from vla_ros_common.node_main import run_node

from vla_server.parameters import declare_parameters
from vla_server.ros_conversions import image_msg_to_rgb, pose_from_msg, pose_to_msg

Result = ExecuteVLATask.Result

# Threads for the executor: a running goal, a goal waiting to preempt it, the success-service
# response, the cancel request and the sensor callbacks must all make progress at once.
EXECUTOR_THREADS = 6
# How often a goal that waits for its first camera frame looks again (seconds).
_FIRST_INPUT_POLL_S = 0.01


@dataclass
class _Stamped:
    """The newest message of a topic and when it arrived (monotonic seconds)."""

    msg: object = None
    received: float = float('-inf')


@dataclass
class _RunningGoal:
    """Book-keeping of the goal that holds the control loop."""

    goal_id: bytes
    preempted: threading.Event = field(default_factory=threading.Event)


class VLAServerNode(Node):
    """ExecuteVLATask action server driving end-effector targets from a VLA policy."""

    def __init__(self) -> None:
        super().__init__('vla_server')
        self.params = declare_parameters(self)
        p = self.params
        self.spec = ActionSpec.from_config(list(p['action_parts']))
        self.limits = GoalLimits(p['default_max_steps'], p['max_steps_limit'],
                                 p['max_instruction_length'])
        self.safety_limits = SafetyLimits(
            workspace_min=list(p['workspace_min']), workspace_max=list(p['workspace_max']),
            max_position_step=p['max_position_step'], max_rotation_step=p['max_rotation_step'])
        self.period = 1.0 / float(p['control_rate_hz'])
        self.controller: Optional[VLAController] = None
        self.policy_error: Optional[str] = None
        self._load_policy()

        self._image = _Stamped()
        self._joints = _Stamped()
        self._last_good_image: Optional[np.ndarray] = None
        self._last_good_image_time = float('-inf')
        self._last_good_image_stamp = None
        self._sensor_lock = threading.Lock()
        self.malformed_images = 0
        self._last_command: Optional[HumanoidAction] = None
        self._running: Optional[_RunningGoal] = None
        self._running_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._decisions: dict[bytes, GoalDecision] = {}

        sensors = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Image, p['image_topic'], self._on_image,
                                 qos_profile_sensor_data, callback_group=sensors)
        if p['joint_states_topic']:
            self.create_subscription(JointState, p['joint_states_topic'], self._on_joints,
                                     qos_profile_sensor_data, callback_group=sensors)
        self._hand_states: dict[str, _Stamped] = {}
        for part in ('left_hand_pose', 'right_hand_pose'):
            topic = p[part.replace('_pose', '_state_topic')]
            if topic:
                self._hand_states[part] = _Stamped()
                self.create_subscription(
                    PoseStamped, topic, lambda msg, part=part: self._on_hand_state(part, msg),
                    10, callback_group=sensors)
        self._command_publishers = self._create_command_publishers()
        # The instruction of each goal that runs, for recorders: goal requests are not on a topic.
        self._instruction_pub = self.create_publisher(String, '~/active_instruction', QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._success_client = None
        if p['success_service']:
            self._success_client = self.create_client(
                Trigger, p['success_service'], callback_group=ReentrantCallbackGroup())
        self._action_server = ActionServer(
            self, ExecuteVLATask, p['action_name'],
            execute_callback=self._execute,
            goal_callback=self._on_goal_request,
            handle_accepted_callback=self._on_goal_accepted,
            cancel_callback=self._on_cancel_request,
            callback_group=ReentrantCallbackGroup())
        state = 'ready' if self.controller else f'ready WITHOUT a policy ({self.policy_error})'
        self.get_logger().info(
            f"vla_server {state}: backend={p['policy_backend']}, action={p['action_name']}, "
            f"image_topic={p['image_topic']}, rate={p['control_rate_hz']} Hz, "
            f"parts={list(self.spec.parts)}, dry_run={p['dry_run']}")

    # ---- set-up ------------------------------------------------------------------------------

    def _load_policy(self) -> None:
        p = self.params
        try:
            options = json.loads(p['policy_options'] or '{}')
            policy = load_policy(p['policy_backend'], p['policy_checkpoint'], self.spec,
                                 device=p['policy_device'],
                                 temporal_ensembling=p['temporal_ensembling'], options=options)
        except Exception as error:  # noqa: BLE001 - the node stays up and refuses goals instead
            self.policy_error = f'{type(error).__name__}: {error}'
            self.get_logger().error(f'no policy loaded: {self.policy_error}')
            return
        self.controller = VLAController(policy, self.spec, SafetyFilter(self.safety_limits),
                                        replan_steps=p['replan_steps'])

    def _create_command_publishers(self) -> dict:
        p, publishers = self.params, {}
        for part in self.spec.parts:
            if part.endswith('_hand_pose'):
                publishers[part] = self.create_publisher(PoseStamped, p[f'{part}_topic'], 10)
            elif part.endswith('_gripper'):
                publishers[part] = self.create_publisher(Float64, p[f'{part}_topic'], 10)
            elif part == 'base_velocity':
                publishers[part] = self.create_publisher(Twist, p['base_velocity_topic'], 10)
        return publishers

    # ---- sensor cache ------------------------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        with self._sensor_lock:
            self._image = _Stamped(msg, time.monotonic())

    def _on_joints(self, msg: JointState) -> None:
        with self._sensor_lock:
            self._joints = _Stamped(msg, time.monotonic())

    def _on_hand_state(self, part: str, msg: PoseStamped) -> None:
        with self._sensor_lock:
            self._hand_states[part] = _Stamped(msg, time.monotonic())

    def _measured_hands(self) -> dict[str, Pose]:
        """Return the hand poses measured within the camera timeout, in the command frame."""
        oldest = time.monotonic() - self.params['camera_timeout_s']
        with self._sensor_lock:
            states = dict(self._hand_states)
        measured = {}
        for part, state in states.items():
            if state.msg is None or state.received < oldest or \
                    state.msg.header.frame_id not in ('', self.params['frame_id']):
                continue
            measured[part] = pose_from_msg(state.msg)
        return measured

    def _fresh_image(self) -> tuple[Optional[np.ndarray], object]:
        """Return the newest well-formed image younger than the camera timeout and its stamp."""
        with self._sensor_lock:
            newest = self._image
            self._image = _Stamped(None, newest.received) if newest.msg else newest
        if newest.msg is not None:
            try:
                self._last_good_image = image_msg_to_rgb(newest.msg)
                self._last_good_image_time = newest.received
                self._last_good_image_stamp = newest.msg.header.stamp
            except ImageConversionError as error:
                self.malformed_images += 1
                self.get_logger().warning(
                    f'skipping malformed image ({self.malformed_images} so far): {error}',
                    throttle_duration_sec=5.0)
        age = time.monotonic() - self._last_good_image_time
        if age > self.params['camera_timeout_s']:
            return None, None
        return self._last_good_image, self._last_good_image_stamp

    def _proprio(self) -> Optional[np.ndarray]:
        with self._sensor_lock:
            msg = self._joints.msg
        return None if msg is None else np.asarray(msg.position, dtype=np.float32)

    # ---- goal life cycle ---------------------------------------------------------------------

    def _on_goal_request(self, goal_request) -> GoalResponse:
        # Goals are accepted so that a refusal reaches the client with its reason in the result
        # (a ROS 2 goal response carries no reason); _execute ends refused goals at once.
        return GoalResponse.ACCEPT

    def _on_cancel_request(self, goal_handle) -> CancelResponse:
        self.get_logger().info('cancel requested')
        return CancelResponse.ACCEPT

    def _on_goal_accepted(self, goal_handle) -> None:
        request = goal_handle.request
        decision = check_goal(request.instruction, request.max_steps, self.limits,
                              self.policy_error if self.controller is None else None)
        with self._running_lock:
            running = self._running
            if decision.accepted and running is not None:
                if self.params['preempt_running_goal']:
                    self.get_logger().info('new goal preempts the running one')
                    running.preempted.set()
                else:
                    decision = GoalDecision(False, reason='another goal is running and '
                                            'preempt_running_goal is false')
            self._decisions[bytes(goal_handle.goal_id.uuid)] = decision
        goal_handle.execute()

    def _execute(self, goal_handle) -> Result:
        decision = self._decisions.pop(bytes(goal_handle.goal_id.uuid))
        instruction = goal_handle.request.instruction
        if not decision.accepted:
            code = self._refusal_code(decision.reason)
            self.get_logger().warning(f'goal {instruction!r} refused: {decision.reason}')
            goal_handle.abort()
            return Result(success=False, error_code=code, message=decision.reason)
        with self._run_lock:
            running = _RunningGoal(bytes(goal_handle.goal_id.uuid))
            with self._running_lock:
                self._running = running
            try:
                return self._run_goal(goal_handle, instruction, decision.max_steps, running)
            except Exception as error:  # noqa: BLE001 - a bug must still end the goal
                self.get_logger().error(f'goal failed with an internal error: {error!r}\n'
                                        f'{traceback.format_exc()}')
                if goal_handle.is_active:
                    goal_handle.abort()
                return Result(success=False, error_code=Result.INTERNAL_ERROR,
                              message=f'internal error: {error!r}')
            finally:
                with self._running_lock:
                    if self._running is running:
                        self._running = None

    def _refusal_code(self, reason: str) -> int:
        if reason.startswith('no policy'):
            return Result.NO_POLICY
        if reason.startswith('another goal'):
            return Result.SERVER_BUSY
        return Result.INVALID_GOAL

    def _run_goal(self, goal_handle, instruction: str, max_steps: int,
                  running: _RunningGoal) -> Result:
        self.get_logger().info(f'goal started: {instruction!r}, max_steps={max_steps}')
        self._instruction_pub.publish(String(data=json.dumps({
            'goal_id': bytes(goal_handle.goal_id.uuid).hex(), 'instruction': instruction})))
        stats = GoalStats()
        first_image = self._await_first_inputs(goal_handle, running)
        # Limit the first step from where the hand is now (as fresh as the first frame).
        self.controller.start_goal(goal_start_command(self._last_command,
                                                      self._measured_hands()))
        next_tick = time.monotonic()
        for step in range(1, max_steps + 1):
            ended = self._interrupted(goal_handle, running, stats)
            if ended:
                return ended
            tick_started = time.perf_counter()
            image, image_stamp = first_image if step == 1 else self._fresh_image()
            if image is None:
                return self._end(goal_handle, stats, Result.CAMERA_TIMEOUT, (
                    f"no camera image newer than {self.params['camera_timeout_s']} s on "
                    f"{self.params['image_topic']}"))
            try:
                outcome = self.controller.tick(Observation(image, instruction, self._proprio()))
            except UnsafeActionError as error:
                return self._end(goal_handle, stats, Result.UNSAFE_ACTION, str(error))
            except PolicyError as error:
                return self._end(goal_handle, stats, Result.POLICY_ERROR, str(error))
            ended = self._interrupted(goal_handle, running, stats)
            if ended:
                return ended
            self._publish(outcome.action, image_stamp)
            stats.record_tick(outcome.inference_ms, outcome.clamps,
                              (time.perf_counter() - tick_started) * 1000.0)
            goal_handle.publish_feedback(self._feedback(step, max_steps, outcome, image_stamp))
            if self._success_due(step, max_steps) and self._task_succeeded():
                return self._end(goal_handle, stats, Result.SUCCEEDED,
                                 f"{self.params['success_service']} reported success")
            next_tick += self.period
            time.sleep(max(0.0, next_tick - time.monotonic()))
            next_tick = max(next_tick, time.monotonic() - self.period)
        checked = 'no success check is configured' if self._success_client is None else (
            f"{self.params['success_service']} did not report success")
        return self._end(goal_handle, stats, Result.MAX_STEPS_REACHED,
                         f'max_steps ({max_steps}) reached; {checked}')

    def _await_first_inputs(self, goal_handle, running: _RunningGoal) -> tuple:
        """
        Return the first fresh image of a goal, waiting up to one camera timeout for it.

        A goal sent right after bring-up can arrive before the server's first frame, or its
        first joint state (publishers and the server are still discovering each other): it waits
        as long as a running goal would tolerate a silent camera instead of ending at once
        (a policy that needs proprioception failed a demo's goal at step 0 that way). Returns
        (None, None) when no frame came, or the goal was canceled or preempted while waiting;
        a joint state that never came is left to the policy's own error.
        """
        needs_proprio = bool(self.controller.policy.proprio_dim)
        deadline = time.monotonic() + self.params['camera_timeout_s']
        while True:
            image, stamp = self._fresh_image()
            ready = image is not None and (not needs_proprio or self._proprio() is not None)
            if (ready or time.monotonic() >= deadline
                    or goal_handle.is_cancel_requested or running.preempted.is_set()):
                return image, stamp
            time.sleep(_FIRST_INPUT_POLL_S)

    def _interrupted(self, goal_handle, running: _RunningGoal, stats: GoalStats):
        if goal_handle.is_cancel_requested:
            return self._end(goal_handle, stats, Result.CANCELED, 'canceled by the client')
        if running.preempted.is_set() or not goal_handle.is_active:
            return self._end(goal_handle, stats, Result.PREEMPTED, 'preempted by a newer goal')
        return None

    def _end(self, goal_handle, stats: GoalStats, code: int, reason: str) -> Result:
        succeeded = code == Result.SUCCEEDED
        if succeeded:
            goal_handle.succeed()
        elif code == Result.CANCELED:
            goal_handle.canceled()
        elif goal_handle.is_active:
            goal_handle.abort()
        message = f'{reason}; {stats.summary()}'
        if self.malformed_images:
            message += f'; malformed images skipped so far: {self.malformed_images}'
        summary = f'goal ended ({_code_name(code)}): {message}'
        # rclpy ties one severity to each logging call site, hence two calls.
        if succeeded or code in (Result.MAX_STEPS_REACHED, Result.CANCELED, Result.PREEMPTED):
            self.get_logger().info(summary)
        else:
            self.get_logger().warning(summary)
        return Result(success=succeeded, error_code=code, message=message,
                      steps_executed=stats.steps)

    # ---- output ------------------------------------------------------------------------------

    def _publish(self, action: HumanoidAction, image_stamp) -> None:
        # Commands carry the stamp of the image they were computed from, so the latency from
        # camera to command can be traced on the robot.
        self._last_command = action
        if self.params['dry_run']:
            return
        stamp = image_stamp
        for part, publisher in self._command_publishers.items():
            value = getattr(action, part)
            if part.endswith('_hand_pose'):
                publisher.publish(pose_to_msg(value, self.params['frame_id'], stamp))
            elif part.endswith('_gripper'):
                publisher.publish(Float64(data=float(value)))
            else:
                twist = Twist()
                twist.linear.x, twist.linear.y, twist.angular.z = (float(v) for v in value)
                publisher.publish(twist)

    def _feedback(self, step: int, max_steps: int, outcome,
                  stamp) -> ExecuteVLATask.Feedback:
        feedback = ExecuteVLATask.Feedback(current_step=step, progress=step / max_steps)
        hand = next((getattr(outcome.action, part) for part in self.spec.parts
                     if part.endswith('_hand_pose')), None)
        if hand is not None:
            feedback.commanded_pose = pose_to_msg(hand, self.params['frame_id'], stamp)
        feedback.inference_time_ms = float(outcome.inference_ms or 0.0)
        return feedback

    # ---- success check -----------------------------------------------------------------------

    def _success_due(self, step: int, max_steps: int) -> bool:
        period = max(1, self.params['success_check_period'])
        return self._success_client is not None and (step % period == 0 or step == max_steps)

    def _task_succeeded(self) -> bool:
        if not self._success_client.service_is_ready():
            self.get_logger().warning(
                f"success service {self.params['success_service']} is not available",
                throttle_duration_sec=5.0)
            return False
        done = threading.Event()
        future = self._success_client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout=max(1.0, 2 * self.period)):
            future.cancel()
            self.get_logger().warning('success service did not answer in time')
            return False
        return bool(future.result().success)


def _code_name(code: int) -> str:
    names = {getattr(Result, n): n for n in dir(Result)
             if n.isupper() and isinstance(getattr(Result, n), int)}
    return names.get(code, str(code))


def main(args=None) -> None:
    """Run the node until SIGINT, then exit 0."""
    # rclpy's MultiThreadedExecutor spins while a ready callback waits for its group, holding the
    # GIL; without a shorter switch interval the image callback starved for > 0.5 s on 2 cores
    # and goals ended in CAMERA_TIMEOUT (make demo: 6 of 6 runs; with it: 80 steps, 2 of 2).
    # The recorder needs the same (see vla_collector.collector_node.main).
    sys.setswitchinterval(0.0002)
    run_node(VLAServerNode, EXECUTOR_THREADS, args=args)
