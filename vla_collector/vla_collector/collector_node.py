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
The demonstration recorder: camera, action and joint-state topics into crash-safe HDF5 episodes.

What a step holds
-----------------
Steps are sampled at sample_rate_hz on the frames of the first camera, the clock (see
sampling.StepSchedule). A step is timed by the clock frame's header stamp; it takes the frame of
every other camera nearest that time, and the command of every action part and the joint state
published last before it. Publication times come from the middleware (MessageInfo), and a step
waits until every input was heard from past its time (at most STEP_WAIT_S), so neither a late
image nor a busy executor shifts an action to the wrong step. Each input must be at most
max_input_age_s off the frame: a step with an input missing or stale is dropped and counted,
never filled in. Publication times are on the publishers' system clocks (synchronised across
machines, as header stamps already need); frames stamped more than a second off that clock (sim
time) are timed by their publication instead. Stored per step (layout: humanoid_vla.data.schema):

* ``obs/<camera_name>_rgb``: uint8 (H, W, 3), converted to RGB from the camera's encoding;
* ``obs/joint_states``: the joint positions as published (when joint_states_topic is set);
* ``obs/ee_pose``: the *commanded* hand pose(s), x y z qx qy qz qw per hand in action-spec order
  (there is no measured end-effector pose topic yet), when the action spec has a hand;
* ``actions``: the commanded action vector in the ActionSpec order;
* ``timestamps``: the header stamp of the clock camera's frame, in seconds.

Images are converted, and so checked, only when a step takes them: a malformed one is counted and
skipped (the clock camera's next frame takes its slot; another camera's next nearest frame is
used if it is close enough in time).

Threads
-------
Subscriptions share one mutually exclusive callback group; a step, once its inputs are in, is
offered to the writer thread (writer_thread.py) without blocking, so a slow disk never stalls
the executor (a full queue drops the step and counts it). Services and the goal watcher share
another group and wait for the writer thread: stop_episode answers once the episode is durable.
A stop that finds no episode open but follows a saved one (its answer was lost and it was sent
again) answers success with ``already stopped: <the saved episode>``, until the next start or
discard.

Recording action goals
----------------------
With record_action_goals, ``<action_name>/_action/status`` starts an episode when a goal turns
EXECUTING and ends it when the goal ends (success = SUCCEEDED). A goal's instruction is not on
any action topic, so it comes from instruction_topic: std_msgs/String, reliable, transient local,
holding ``{"goal_id": "<the goal UUID as 32 hex digits>", "instruction": "..."}`` (a plain
string is taken as the instruction of the next goal that starts).
"""

from collections import deque, OrderedDict
from dataclasses import dataclass
from functools import partial
import itertools
import json
from pathlib import Path
import sys
import threading
import time
from typing import Optional

from action_msgs.msg import GoalStatus, GoalStatusArray
from geometry_msgs.msg import PoseStamped, Twist
from humanoid_interfaces.srv import StartEpisode
from humanoid_vla.actions import ActionSpec, HumanoidAction
from humanoid_vla.data import EpisodeStorageError, EpisodeWriteError, EpisodeWriter
from humanoid_vla.data.schema import INDEX_SUFFIXES
from humanoid_vla.image_conversion import ImageConversionError
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, qos_profile_action_status_default, QoSProfile,
                       ReliabilityPolicy)
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import SetBool, Trigger

from vla_collector.alignment import CameraFrames, History, Stamped
from vla_collector.parameters import declare_parameters
from vla_collector.ros_conversions import (base_velocity_from_msg, image_msg_to_rgb,
                                           pose_from_msg, stamp_seconds)
from vla_collector.sampling import StepSchedule
from vla_collector.writer_thread import EpisodeWriterThread, WriteResult
from vla_ros_common.node_main import run_node

# Sensor callbacks, the service or goal watcher waiting on the writer, and a spare.
EXECUTOR_THREADS = 4
INSTRUCTION_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
_TERMINAL = (GoalStatus.STATUS_SUCCEEDED, GoalStatus.STATUS_CANCELED, GoalStatus.STATUS_ABORTED)
_REMEMBERED_INSTRUCTIONS = 64
# Sensor-data QoS (best effort: it also matches reliable publishers) with queues deep enough to
# ride out a stall of the executor of about a third of a second.
CAMERA_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE)
INPUT_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT,
                       durability=DurabilityPolicy.VOLATILE)
# A frame stamped further than this from its publication is not on the publishers' clock (sim
# time): it is timed by its publication instead.
_CLOCK_MISMATCH_S = 1.0
_WARN_EVERY_S = 5.0
# How long a due frame waits for every input to be heard from past it (then it is dropped).
STEP_WAIT_S = 2.0
# How long stop_episode lets the steps of the last frames wait for their inputs.
STOP_WAIT_S = 0.5
# On SIGINT, how long shutdown waits for running callbacks and for the writer to close the file;
# a finished episode is already durable, so a stuck writer must not keep the process alive.
SHUTDOWN_WAIT_S = 5.0


class _Camera:
    """One camera topic and its recent frames."""

    def __init__(self, name: str, topic: str) -> None:
        self.name = name
        self.topic = topic
        self.frames = CameraFrames(image_msg_to_rgb, ImageConversionError)


@dataclass
class _Episode:
    """Book-keeping of the episode being recorded, for its summary line."""

    number: int
    instruction: str
    goal_id: Optional[str]
    started: float
    frames: dict
    dropped: int = 0
    last_drop: str = ''
    malformed: int = 0
    queue_drops: int = 0
    stopping: bool = False


@dataclass
class _PendingStep:
    """A due clock frame whose step waits until every input was heard from past its time."""

    episode: _Episode
    stamp: float
    time: float
    image: np.ndarray
    queued: float


def parse_goal_instruction(text: str) -> tuple[Optional[str], str]:
    """Return (goal id or None, instruction) from an instruction_topic message."""
    try:
        data = json.loads(text)
    except ValueError:
        return None, text
    if isinstance(data, dict) and isinstance(data.get('instruction'), str):
        goal_id = data.get('goal_id')
        return (str(goal_id).lower() if goal_id else None), data['instruction']
    return None, text


class VLACollectorNode(Node):
    """Records steps of camera images, commanded actions and joint states into episodes."""

    def __init__(self) -> None:
        super().__init__('vla_collector')
        self.params = declare_parameters(self)
        p = self.params
        self.spec = ActionSpec.from_config(list(p['action_parts']))
        self._cameras = self._camera_config()
        compression = p['image_compression']
        self._compression = None if compression in ('none', '') else compression
        if self._compression not in ('lzf', 'gzip', None):
            raise ValueError(f'image_compression must be lzf, gzip or none, not {compression!r}')
        self.max_age = float(p['max_input_age_s'])
        self._schedule = StepSchedule(float(p['sample_rate_hz']))
        self._hands = [part for part in self.spec.parts if part.endswith('_hand_pose')]

        self._lock = threading.Lock()
        self._commands = {part: History() for part in self.spec.parts}
        self._joints = History()
        self._pending: deque[_PendingStep] = deque()
        self._episode: Optional[_Episode] = None
        self._episode_ids = itertools.count(1)
        self._failed: Optional[str] = None
        # What the last stop saved, until the next start or discard: a stop sent again because
        # its answer was lost is told the episode is already saved, not that none is open.
        self._last_saved: Optional[str] = None
        self.malformed_total = 0
        self._goal_status: dict[str, tuple[int, float]] = {}
        self._goal_instructions: OrderedDict[str, str] = OrderedDict()
        self._plain_instruction: Optional[str] = None
        self._goals_handled: set[str] = set()
        self._started_at = stamp_seconds(self.get_clock().now().to_msg())

        sensors = MutuallyExclusiveCallbackGroup()
        control = MutuallyExclusiveCallbackGroup()
        self._subscribe_inputs(sensors)
        self._writer = EpisodeWriterThread(self._open_writer, p['write_queue_size'],
                                           self._on_write_failure)
        self.create_service(StartEpisode, '~/start_episode', self._on_start,
                            callback_group=control)
        self.create_service(SetBool, '~/stop_episode', self._on_stop, callback_group=control)
        self.create_service(Trigger, '~/discard_episode', self._on_discard,
                            callback_group=control)
        if p['record_action_goals']:
            self.create_subscription(GoalStatusArray, f"{p['action_name']}/_action/status",
                                     self._on_goal_status, qos_profile_action_status_default,
                                     callback_group=control)
            self.create_subscription(String, p['instruction_topic'], self._on_goal_instruction,
                                     INSTRUCTION_QOS, callback_group=control)
        self.get_logger().info(
            f'vla_collector ready: {self._dataset_state()}; cameras '
            f'{[(c.name, c.topic) for c in self._cameras]}, parts={list(self.spec.parts)}, '
            f"{p['sample_rate_hz']} Hz, record_action_goals={p['record_action_goals']}")

    # ---- set-up ------------------------------------------------------------------------------

    def _camera_config(self) -> list[_Camera]:
        topics, names = list(self.params['camera_topics']), list(self.params['camera_names'])
        if not topics or len(topics) != len(names):
            raise ValueError(f'camera_topics {topics} and camera_names {names} must be non-empty '
                             'and of the same length')
        if len(set(names)) != len(names) or any(not n or '/' in n for n in names):
            raise ValueError(f'camera_names {names} must be distinct names without "/"')
        return [_Camera(name, topic) for name, topic in zip(names, topics)]

    def _subscribe_inputs(self, group) -> None:
        # Commands and joint states first: when the executor falls behind, it serves ready
        # subscriptions in this order, so the small messages a waiting step needs come first.
        p = self.params
        self._command_topics = {}
        for part in self.spec.parts:
            if part.endswith('_hand_pose'):
                msg_type, convert = PoseStamped, pose_from_msg
            elif part.endswith('_gripper'):
                msg_type, convert = Float64, _float_data
            else:
                msg_type, convert = Twist, base_velocity_from_msg
            self._command_topics[part] = self.create_subscription(
                msg_type, p[f'{part}_topic'], partial(self._on_command, part, convert),
                INPUT_QOS, callback_group=group).topic_name
        self._joint_topic = None
        if p['joint_states_topic']:
            self._joint_topic = self.create_subscription(
                JointState, p['joint_states_topic'], self._on_joints, INPUT_QOS,
                callback_group=group).topic_name
        image_type = CompressedImage if p['compressed_images'] else Image
        for index, camera in enumerate(self._cameras):
            callback = self._on_clock_frame if index == 0 else partial(self._on_frame, camera)
            camera.topic = self.create_subscription(
                image_type, camera.topic, callback, CAMERA_QOS,
                callback_group=group).topic_name

    def _sources(self) -> dict:
        p = self.params
        return {
            'recorder': 'vla_collector',
            'cameras': {c.name: c.topic for c in self._cameras},
            'compressed_images': bool(p['compressed_images']),
            'actions': dict(self._command_topics),
            'action_parts': list(self.spec.parts),
            'joint_states': self._joint_topic,
            'ee_pose': 'commanded hand poses (x y z qx qy qz qw per hand, action-spec order)'
                       if self._hands else None,
            'sample_rate_hz': float(p['sample_rate_hz']),
            'max_input_age_s': self.max_age,
            'timestamps': f'header stamps of {self._cameras[0].topic}',
        }

    def _open_writer(self) -> EpisodeWriter:
        """Open (or resume) the dataset; runs on the writer thread."""
        root = Path(self.params['data_dir']).expanduser()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EpisodeWriteError(f'cannot create data_dir {root}: {error}') from error
        name = self.params['dataset_name']
        if not name.endswith(INDEX_SUFFIXES):
            name += '.hdf5'
        writer = EpisodeWriter(root / name, sources=self._sources(),
                               image_compression=self._compression,
                               action_dimension_names=self.spec.dimension_names(), root_dir=root)
        for partial_file in writer.leftover_partials:
            self.get_logger().warning(
                f'{partial_file} is an episode interrupted by a crash; it is not part of the '
                'dataset (delete it, or keep it for inspection)')
        return writer

    def _dataset_state(self) -> str:
        try:
            writer = self._writer.open_dataset()
        except EpisodeStorageError as error:
            self.get_logger().error(f'cannot open the dataset (episodes will be refused until '
                                    f'it can be): {error}')
            return f'dataset NOT open ({error})'
        return f'dataset {writer.path} holds {writer.num_demos} episodes'

    # ---- inputs ------------------------------------------------------------------------------

    def _frame_time(self, msg, published: float) -> float:
        """Return a frame's time: its header stamp, or when it was published if that is off."""
        stamp = stamp_seconds(msg.header.stamp)
        if abs(stamp - published) <= _CLOCK_MISMATCH_S:
            return stamp
        self.get_logger().warning(
            f'frame stamps are {published - stamp:+.1f} s from the system clock (sim time?): '
            'frames are timed by when they were published instead',
            throttle_duration_sec=_WARN_EVERY_S)
        return published

    def _on_command(self, part: str, convert, msg, info) -> None:
        value, published = convert(msg), _published(info)
        with self._lock:
            self._commands[part].add(published, value)
            self._complete_steps()

    def _on_joints(self, msg: JointState, info) -> None:
        published = _published(info)
        with self._lock:
            if not len(msg.position):
                self._malformed(self._joint_topic, 'joint state without positions')
                return
            self._joints.add(published, np.array(msg.position, dtype=np.float64))
            self._complete_steps()

    def _on_frame(self, camera: _Camera, msg, info) -> None:
        frame_time = self._frame_time(msg, _published(info))
        with self._lock:
            camera.frames.add(frame_time, msg)
            if self._episode is not None:
                self._episode.frames[camera.name] += 1
            self._complete_steps()

    def _on_clock_frame(self, msg, info) -> None:
        stamp = stamp_seconds(msg.header.stamp)
        frame_time = self._frame_time(msg, _published(info))
        clock = self._cameras[0]
        with self._lock:
            self._schedule.observe(stamp)
            episode = self._episode
            if episode is not None and not episode.stopping:
                episode.frames[clock.name] += 1
                if self._schedule.due(stamp):
                    try:
                        image = image_msg_to_rgb(msg)
                    except ImageConversionError as error:
                        self._malformed(clock.topic, str(error))  # The next frame takes the slot.
                    else:
                        self._schedule.take(stamp)
                        self._pending.append(_PendingStep(episode, stamp, frame_time, image,
                                                          time.monotonic()))
            self._complete_steps()

    def _complete_steps(self, force: bool = False) -> None:
        """
        Assemble the waiting steps whose inputs are all in (call with the lock held).

        A step waits until every input was heard from past its time, so that nothing published
        before the frame can still arrive however far behind the executor is. After STEP_WAIT_S
        (or when forced, at stop) a step still missing that is dropped, never recorded with an
        input that might not be the right one.
        """
        now = time.monotonic()
        while self._pending:
            step = self._pending[0]
            lagging = self._lagging_inputs(step.time)
            if lagging and not force and now - step.queued <= STEP_WAIT_S:
                return
            self._pending.popleft()
            if step.episode is self._episode:
                self._record_step(step, lagging)

    def _lagging_inputs(self, time: float) -> list[str]:
        """Return the inputs not yet heard from past `time`."""
        lagging = [self._command_topics[part] for part, history in self._commands.items()
                   if history.newest_time <= time]
        if self._joint_topic is not None and self._joints.newest_time <= time:
            lagging.append(self._joint_topic)
        return lagging + [c.topic for c in self._cameras[1:] if c.frames.newest_time < time]

    def _record_step(self, step: _PendingStep, lagging: list[str]) -> None:
        """Offer a step to the writer, or drop and count it when an input is missing or stale."""
        episode = step.episode
        problems = [f'nothing from {topic} after the frame' for topic in lagging]
        observations = {f'{self._cameras[0].name}_rgb': step.image}

        def fresh(stamped: Stamped, what: str) -> bool:
            if stamped.value is None:
                problems.append(f'nothing from {what} before the frame')
                return False
            if abs(step.time - stamped.time) > self.max_age:
                problems.append(f'{what} is {step.time - stamped.time:.2f} s off the frame')
                return False
            return True

        for camera in self._cameras[1:]:
            image = camera.frames.nearest(step.time, partial(self._malformed, camera.topic))
            if fresh(image, camera.topic):
                observations[f'{camera.name}_rgb'] = image.value
        commands = {}
        for part, history in self._commands.items():
            command = history.at(step.time)
            if fresh(command, self._command_topics[part]):
                commands[part] = command.value
        if self._joint_topic is not None:
            joints = self._joints.at(step.time)
            if fresh(joints, self._joint_topic):
                observations['joint_states'] = joints.value
        if problems:
            episode.dropped += 1
            episode.last_drop = '; '.join(problems)
            self.get_logger().warning(
                f'step dropped ({episode.dropped} this episode): {episode.last_drop}',
                throttle_duration_sec=_WARN_EVERY_S)
            return
        if self._hands:
            observations['ee_pose'] = np.concatenate(
                [commands[hand].to_array() for hand in self._hands])
        action = HumanoidAction(**commands).to_vector(self.spec)
        if not self._writer.offer_step(episode.number, observations, action, step.stamp):
            episode.queue_drops += 1
            self.get_logger().warning(
                f'write queue full: step dropped ({episode.queue_drops} this episode); the disk '
                'is slower than the recording', throttle_duration_sec=_WARN_EVERY_S)

    def _malformed(self, topic: str, error: str) -> None:
        """Count a malformed message (call with the lock held)."""
        self.malformed_total += 1
        if self._episode is not None:
            self._episode.malformed += 1
        self.get_logger().warning(
            f'skipping malformed message on {topic} ({self.malformed_total} so far): {error}',
            throttle_duration_sec=_WARN_EVERY_S)

    # ---- episodes ----------------------------------------------------------------------------

    def _on_start(self, request: StartEpisode.Request, response: StartEpisode.Response):
        response.accepted, response.message = self._start(request.instruction, None)
        return response

    def _on_stop(self, request: SetBool.Request, response: SetBool.Response):
        response.success, response.message = self._stop(bool(request.data))
        return response

    def _on_discard(self, request: Trigger.Request, response: Trigger.Response):
        with self._lock:
            episode, self._episode, self._failed = self._episode, None, None
            self._last_saved = None
            self._pending.clear()
        if episode is None:
            response.success, response.message = False, 'no episode in progress'
            return response
        try:
            result = self._writer.discard(episode.number)
            outcome = 'episode discarded'
        except EpisodeStorageError as error:
            result, outcome = WriteResult(error=str(error)), f'discarding failed ({error})'
        response.success = result.error is None
        response.message = self._summary(outcome, episode, result)
        self.get_logger().info(response.message)
        return response

    def _start(self, instruction: str, goal_id: Optional[str]) -> tuple[bool, str]:
        if not instruction.strip():
            return False, 'the instruction is empty'
        with self._lock:
            if self._episode is not None:
                return False, (f'an episode is already being recorded '
                               f'({self._episode.instruction!r}): stop or discard it first')
        episode = _Episode(next(self._episode_ids), instruction, goal_id, time.monotonic(),
                           {camera.name: 0 for camera in self._cameras})
        try:
            self._writer.begin(episode.number, instruction)
        except EpisodeStorageError as error:
            message = f'cannot start an episode: {error}'
            self.get_logger().error(message)
            return False, message
        with self._lock:
            self._episode, self._failed, self._last_saved = episode, None, None
            self._pending.clear()
            self._schedule.reset()
        source = f'goal {goal_id}' if goal_id else 'start_episode'
        self.get_logger().info(f'recording ({source}): {instruction!r}')
        return True, f'recording {instruction!r}'

    def _stop(self, success: bool) -> tuple[bool, str]:
        with self._lock:
            if self._episode is not None:
                self._episode.stopping = True  # No new step; the waiting ones may finish.
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    break
            time.sleep(0.01)
        with self._lock:
            self._complete_steps(force=True)
            episode, self._episode = self._episode, None
            failed, self._failed = self._failed, None
            last_saved = self._last_saved
        if episode is None:
            if failed is None and last_saved is not None:
                return True, f'already stopped: {last_saved}'
            return False, failed or 'no episode in progress'
        try:
            result = self._writer.end(episode.number, success)
        except EpisodeStorageError as error:
            result = WriteResult(error=str(error))
        if result.name is None:
            outcome = f'episode not saved ({result.error})'
        else:
            outcome = f'{result.name} saved (success={success})'
            if result.warning:
                outcome += f' but its index entry is late ({result.warning})'
        message = self._summary(outcome, episode, result)
        # rclpy ties one severity to each logging call site, hence two calls.
        if result.name and not result.warning:
            self.get_logger().info(message)
        else:
            self.get_logger().warning(message)
        if result.name is not None:
            with self._lock:
                self._last_saved = message
        return result.name is not None, message

    def _on_write_failure(self, episode_id: int, result: WriteResult) -> None:
        """End the episode a write error poisoned (called on the writer thread)."""
        with self._lock:
            episode = self._episode
            if episode is None or episode.number != episode_id:
                return  # A stop or discard already took it and reports the error.
            self._episode = None
        message = self._summary(
            f'episode ended by a write error; nothing of it is saved, saved episodes are '
            f'untouched ({result.error})', episode, result)
        with self._lock:
            self._failed = message
        self.get_logger().error(message)

    def _summary(self, outcome: str, episode: _Episode, result: WriteResult) -> str:
        frames = ', '.join(f'{name} {count}' for name, count in episode.frames.items())
        text = (f'{outcome}: {result.written} steps, {episode.dropped} dropped (stale or missing '
                f'inputs), {episode.malformed} malformed messages skipped, {episode.queue_drops} '
                f'dropped (write queue full), {result.rejected} rejected by the writer, '
                f'{time.monotonic() - episode.started:.1f} s; frames received: {frames}; writer '
                f'busy {result.busy_s:.2f} s ({result.cpu_s:.2f} s CPU) for '
                f'{result.image_bytes / 1e6:.1f} MB of images')
        if episode.last_drop:
            text += f'; last drop: {episode.last_drop}'
        if result.last_rejection:
            text += f'; last rejection: {result.last_rejection}'
        return (text + f'; instruction {episode.instruction!r}').replace('\n', ' ')

    # ---- recording action goals --------------------------------------------------------------

    def _on_goal_status(self, msg: GoalStatusArray) -> None:
        self._goal_status = {
            bytes(s.goal_info.goal_id.uuid).hex(): (s.status, stamp_seconds(s.goal_info.stamp))
            for s in msg.status_list}
        self._follow_goals()

    def _on_goal_instruction(self, msg: String) -> None:
        goal_id, instruction = parse_goal_instruction(msg.data)
        if goal_id is None:
            self._plain_instruction = instruction
        else:
            self._goal_instructions[goal_id] = instruction
            while len(self._goal_instructions) > _REMEMBERED_INSTRUCTIONS:
                self._goal_instructions.popitem(last=False)
        self._follow_goals()

    def _follow_goals(self) -> None:
        """Start and stop episodes as the goals of the action start and end."""
        statuses = self._goal_status
        with self._lock:
            episode = self._episode
        if episode is not None and episode.goal_id is not None:
            status = statuses.get(episode.goal_id, (None, 0.0))[0]
            if status is None or status in _TERMINAL:
                self._stop(status == GoalStatus.STATUS_SUCCEEDED)
                episode = None
        self._goals_handled &= set(statuses)
        executing = sorted((stamp, goal) for goal, (status, stamp) in statuses.items()
                           if status == GoalStatus.STATUS_EXECUTING
                           and goal not in self._goals_handled)
        if not executing or (episode is not None and episode.goal_id is not None):
            return  # A newer goal waits for the end of the one being recorded.
        stamp, goal = executing[-1]
        if episode is not None or stamp < self._started_at:
            self._goals_handled.update(g for _, g in executing)
            self.get_logger().info(
                f'goal {goal} is not recorded: ' + ('an episode started by start_episode is in '
                                                    'progress' if episode is not None else
                                                    'it started before this recorder'))
            return
        instruction = self._goal_instructions.get(goal, self._plain_instruction)
        if instruction is None:
            self.get_logger().info(f'goal {goal} runs; waiting for its instruction on '
                                   f"{self.params['instruction_topic']}",
                                   throttle_duration_sec=_WARN_EVERY_S)
            return
        self._goals_handled.update(g for _, g in executing)
        self._plain_instruction = None
        self._start(instruction, goal)

    # ---- shutdown ----------------------------------------------------------------------------

    def destroy_node(self) -> None:
        """Close the dataset; an episode still recording stays on disk unfinished."""
        with self._lock:
            episode, self._episode = self._episode, None
        if episode is not None:
            self.get_logger().warning(
                f'shutting down while recording {episode.instruction!r}: the episode stays '
                'unfinished (a .partial file, not part of the dataset)')
        self._writer.close(timeout=SHUTDOWN_WAIT_S)
        super().destroy_node()


def _float_data(msg: Float64) -> float:
    return float(msg.data)


def _published(info) -> float:
    """Return when a message was published (system clock, seconds), from its MessageInfo."""
    nanoseconds = info['source_timestamp'] or info['received_timestamp'] or time.time_ns()
    return nanoseconds * 1e-9


def main(args=None) -> None:
    """Run the node until SIGINT, then exit 0."""
    # rclpy's MultiThreadedExecutor spins while a ready callback waits for its group; hand the
    # GIL over more often so the callbacks and the writer thread it waits for keep moving.
    sys.setswitchinterval(0.0002)
    run_node(VLACollectorNode, EXECUTOR_THREADS, shutdown_timeout_sec=SHUTDOWN_WAIT_S,
             args=args)
