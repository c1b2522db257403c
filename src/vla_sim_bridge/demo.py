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
The one-command demo: the simulated G1 follows an instruction with the default checkpoint.

Starts the simulation bridge, the VLA server and the recorder as separate processes with the
config files of config/ (what `ros2 launch launch/vla_system.launch.py use_sim:=true` starts on a
machine with ROS 2), sends the instruction through the ExecuteVLATask action, prints feedback
lines and the result, records the episode, and writes what the head camera saw (an image strip
and a video). Every process it started is stopped at the end, on Ctrl-C and on failure.
"""

import argparse
import json
import pathlib
import sys
import time
from typing import Optional

import cv2
from humanoid_interfaces.action import ExecuteVLATask
from humanoid_interfaces.srv import ResetSimulation, StartEpisode
from humanoid_vla.data import validate_file
from humanoid_vla.image_conversion import image_to_rgb8
from humanoid_vla.sim.tasks import FAMILIES, sample_task
import numpy as np
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger

from vla_sim_bridge.experiments.rosclient import ExperimentClient
from vla_sim_bridge.launcher import CONFIG, NodeProcesses, SIM_CAMERA_TIMEOUT_S, WORKSPACE

DEFAULT_INSTRUCTION = 'pick up the red cup and place it on the plate'
ACTION = '/execute_vla_task'


def find_seed(instruction: str, search: int = 5000) -> tuple[int, str]:
    """Return the first (seed, task family) whose task says exactly this instruction."""
    for seed in range(search):
        for family in FAMILIES:
            if sample_task(seed, family, 'train').instruction == instruction:
                return seed, family
    examples = sorted({sample_task(seed, family, 'train').instruction
                       for seed in range(6) for family in FAMILIES})
    raise SystemExit(f'the simulation sets up no task worded {instruction!r} within {search} '
                     f'seeds; examples it can: {examples}')


class DemoClient(ExperimentClient):
    """The demo's node: the experiments' client, keeping every head camera frame of the goal."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.recording_frames = False
        super().__init__('vla_demo', camera_topic='/head_camera/image_raw')

    def _on_image(self, msg: Image) -> None:
        super()._on_image(msg)
        if self.recording_frames:
            self.frames.append(image_to_rgb8(msg.data, msg.height, msg.width, msg.encoding,
                                             msg.step, bool(msg.is_bigendian)))

    def execute(self, instruction: str, max_steps: int):
        """Send the goal, print a line per feedback, return the result."""
        if not self.action_client(ExecuteVLATask, ACTION).wait_for_server(timeout_sec=120.0):
            raise RuntimeError(f'the VLA server did not offer {ACTION}')
        goal = ExecuteVLATask.Goal(instruction=instruction, max_steps=max_steps)
        accepted, result = self.run_goal(ExecuteVLATask, ACTION, goal,
                                         timeout=max_steps * 2.0 + 60.0,
                                         on_feedback=print_feedback)
        if not accepted:
            raise RuntimeError('the server rejected the goal')
        return result


def print_feedback(message) -> None:
    """Print one feedback line."""
    f = message.feedback
    p = f.commanded_pose.pose.position
    print(f'  step {f.current_step:3d}  {f.progress:6.1%}  target ({p.x:+.3f}, {p.y:+.3f}, '
          f'{p.z:+.3f})  inference {f.inference_time_ms:5.1f} ms', flush=True)


def write_camera_outputs(frames: list[np.ndarray], out: pathlib.Path,
                         tiles: int = 8) -> Optional[pathlib.Path]:
    """Write an image strip (PNG) and a video (MP4) of the head camera frames."""
    if not frames:
        return None
    chosen = np.linspace(0, len(frames) - 1, min(tiles, len(frames))).astype(int)
    picks = [frames[i] for i in chosen]
    strip = out / 'head_camera_strip.png'
    cv2.imwrite(str(strip), cv2.cvtColor(np.concatenate(picks, axis=1), cv2.COLOR_RGB2BGR))
    height, width = frames[0].shape[:2]
    video = cv2.VideoWriter(str(out / 'head_camera.mp4'), cv2.VideoWriter_fourcc(*'mp4v'),
                            10.0, (width, height))
    for frame in frames:
        video.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    video.release()
    return strip


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the demo's options."""
    parser = argparse.ArgumentParser(prog='vla-demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--instruction', default=DEFAULT_INSTRUCTION)
    parser.add_argument('--checkpoint', default=str(WORKSPACE / 'checkpoints' / 'default'))
    parser.add_argument('--max-steps', type=int, default=80)
    parser.add_argument('--out', default=str(WORKSPACE / 'outputs' / 'demo'),
                        help='where the episode, the image strip, the video and logs go')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Bring the system up, run the instruction, write the outputs, bring it down."""
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = pathlib.Path(args.checkpoint).resolve()
    if not (checkpoint / 'config.json').is_file():
        raise SystemExit(f'no checkpoint at {checkpoint}')
    seed, family = find_seed(args.instruction)
    print(f'instruction: {args.instruction!r} (simulation seed {seed}, {family})', flush=True)
    with NodeProcesses(out / 'logs') as nodes:
        nodes.start('vla_sim', 'vla_sim_bridge', 'vla_sim_bridge', [
            '--params-file', str(CONFIG / 'sim.yaml'), '-p', f'seed:={seed}',
            '-p', f'task:={family}'])
        nodes.start('vla_collector', 'vla_collector', 'vla_collector', [
            '--params-file', str(CONFIG / 'vla_collector.yaml'),
            '-p', f'data_dir:={out}', '-p', 'dataset_name:=demo_episodes'])
        nodes.start('vla_server', 'vla_server', 'vla_server', [
            '--params-file', str(CONFIG / 'vla_server.yaml'),
            '-p', f'policy_checkpoint:={checkpoint}',
            '-p', 'success_service:=/vla_sim/task_success', '-p', 'success_check_period:=1',
            # As vla-sim-evaluate: a clean-clone CI run once saw no frame for 0.5 s (the robot
            # default) and the goal ended after 3 of 5 steps.
            '-p', f'camera_timeout_s:={SIM_CAMERA_TIMEOUT_S}'])
        (out / 'processes.json').write_text(json.dumps(
            {name: p.pid for name, p in nodes.processes.items()}))
        client = DemoClient()
        try:
            result = _run_episode(client, nodes, args, seed, family)
        except (RuntimeError, TimeoutError):
            for name in nodes.processes:  # what each node said before the demo gave up
                print(f'--- end of {name}.log ---\n{nodes.log_tail(name)}\n---', flush=True)
            raise
        finally:
            client.close()
        codes = nodes.stop_all()
        print('processes stopped: ' + ', '.join(f'{n} exit {c}' for n, c in codes.items()))
        for name in (name for name, code in codes.items() if code != 0):
            # A node that did not stop cleanly says why at the end of its log.
            print(f'--- end of {name}.log ---\n{nodes.log_tail(name)}\n---', flush=True)
    strip = write_camera_outputs(client.frames, out)
    report = validate_file(out / 'demo_episodes.hdf5')
    print(f'result: success={result.success} steps={result.steps_executed}: {result.message}')
    print(f'episode file: {out / "demo_episodes.hdf5"} ({len(report.episodes)} episode(s), '
          f'{"valid" if report.ok else "PROBLEMS: " + "; ".join(report.problems)})')
    print(f'head camera: {strip} and {out / "head_camera.mp4"} ({len(client.frames)} frames)')
    return 0 if report.ok and strip is not None else 1


def _run_episode(client: DemoClient, nodes: NodeProcesses, args, seed: int, family: str):
    for srv_type, name in ((ResetSimulation, '/vla_sim/reset'),
                           (StartEpisode, '/vla_collector/start_episode'),
                           (Trigger, '/vla_collector/discard_episode'),
                           (SetBool, '/vla_collector/stop_episode')):
        client.wait_for_service(srv_type, name, 120.0, nodes.check_alive)
    reset = client.call(ResetSimulation, '/vla_sim/reset', ResetSimulation.Request(
        seed=seed, task=family, split='train'), timeout=20.0, attempts=3)
    nodes.check_alive()
    if not reset.accepted:
        raise RuntimeError(f'simulation reset refused: {reset.message}')
    started = client.start_recording(args.instruction)
    if not started.accepted:
        raise RuntimeError(f'recorder refused to start: {started.message}')
    # The server aborts a goal at once when no camera frame is fresh: let frames flow first.
    deadline = time.monotonic() + 60.0
    while client.image_count < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    client.recording_frames = True
    began = time.monotonic()
    result = client.execute(args.instruction, args.max_steps)
    client.recording_frames = False
    stopped = client.stop_recording(bool(result.success), timeout=60.0)
    print(f'recorder: {stopped.message} ({time.monotonic() - began:.1f} s)', flush=True)
    return result


def main(argv=None) -> int:
    """Entry point of vla-demo."""
    try:
        return run(parse_args(argv))
    except KeyboardInterrupt:
        print('interrupted: every started process was stopped', file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as error:
        print(f'demo failed: {error}', file=sys.stderr)
        return 1
