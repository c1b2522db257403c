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
Evaluate a checkpoint (or the scripted expert) in closed loop through the real nodes.

    vla-sim-evaluate --checkpoint runs/sim_touch_pick/final --episodes 40 --split novel \
        --seed-start 10000 --out results/model_novel.json
    vla-sim-evaluate --expert --episodes 40 --split novel --seed-start 10000 \
        --out results/expert_novel.json

Starts the bridge (config/sim.yaml) and, unless --expert, the VLA server (config/vla_server.yaml,
policy_backend custom, success_service /vla_sim/task_success checked every tick, the sim's
pelvis-frame safety box). For episode i (seed S + i, families in turn): resets the world on
the split, sends one ExecuteVLATask goal with the instruction the world was set up for and the
family's step budget, and records result.success, steps_executed and error_code. --expert runs
the bridge's scripted expert on the same seeds instead (the comparison column). A few head-camera
frames of the first episodes of each family are written beside the results file
(<out stem>_frames/) for the report's image strip. Use seeds not used for recording.
"""

import argparse
import json
import pathlib
import re
import sys
import time
from typing import Optional, Sequence

from humanoid_vla.sim.layout import HAND_WORKSPACE_MAX, HAND_WORKSPACE_MIN
from humanoid_vla.sim.tasks import sample_task
from vla_sim_bridge.experiments.record import parse_families
from vla_sim_bridge.launcher import CONFIG, NodeProcesses, SIM_CAMERA_TIMEOUT_S

DEFAULT_MAX_STEPS = {'touch': 40, 'pick_place': 80}
SIM_WORKSPACE_MIN = list(HAND_WORKSPACE_MIN)
SIM_WORKSPACE_MAX = list(HAND_WORKSPACE_MAX)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog='vla-sim-evaluate', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint', help='checkpoint directory of the custom VLA')
    source.add_argument('--expert', action='store_true', help='evaluate the scripted expert')
    parser.add_argument('--episodes', type=int, required=True,
                        help='episodes in total (task families in turn)')
    parser.add_argument('--split', default='train', choices=['train', 'novel'])
    parser.add_argument('--seed-start', type=int, default=10000, help='seed of the first episode')
    parser.add_argument('--families', type=parse_families, default=['touch', 'pick_place'],
                        help='comma-separated task families, used in turn')
    parser.add_argument('--max-steps', default=None,
                        help='step budget per family, e.g. touch=40,pick_place=80 (default)')
    parser.add_argument('--label', default=None,
                        help='name of this policy in the report (default: expert, or model / '
                             "blind from the checkpoint's use_instruction)")
    parser.add_argument('--out', required=True, help='results JSON file')
    parser.add_argument('--frame-episodes', type=int, default=2,
                        help='episodes per family whose camera frames are saved')
    parser.add_argument('--settle', type=float, default=0.5,
                        help='seconds between reset and the goal (fresh camera frames)')
    parser.add_argument('--camera-timeout', type=float, default=SIM_CAMERA_TIMEOUT_S,
                        help='server camera_timeout_s: a loaded CPU can delay the sim camera')
    parser.add_argument('--server-param', action='append', default=[], metavar='NAME:=VALUE',
                        help='extra vla_server parameter, e.g. replan_steps:=2 (repeatable)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID for the nodes and this client (default: inherited)')
    return parser


def step_budgets(text: Optional[str]) -> dict:
    """Parse 'touch=40,pick_place=80' over the defaults."""
    budgets = dict(DEFAULT_MAX_STEPS)
    for item in filter(None, (text or '').split(',')):
        family, _, value = item.partition('=')
        budgets[family.strip()] = int(value)
    return budgets


def server_overrides(params: Sequence[str]) -> list:
    """Turn ['replan_steps:=2'] into ['-p', 'replan_steps:=2'], refusing malformed items."""
    arguments = []
    for item in params:
        name, separator, value = item.partition(':=')
        if not separator or not name.strip() or not value.strip():
            raise ValueError(f'--server-param needs NAME:=VALUE, got {item!r}')
        arguments += ['-p', f'{name.strip()}:={value.strip()}']
    return arguments


def results_header(args: argparse.Namespace, budgets: dict, frames_dir: str) -> dict:
    """Return what a results file says of its run; paths stay as given (files get shared)."""
    return {
        'label': args.label or default_label(args.checkpoint),
        'mode': 'expert' if args.expert else 'policy',
        'checkpoint': None if args.expert else args.checkpoint,
        'split': args.split, 'families': args.families, 'seed_start': args.seed_start,
        'max_steps': budgets, 'server_params': list(args.server_param),
        'command': ' '.join(['vla-sim-evaluate', *sys.argv[1:]]),
        'frames_dir': frames_dir, 'episodes': [],
    }


def default_label(checkpoint: Optional[str]) -> str:
    """Return 'expert', or 'model' / 'blind' from the checkpoint's training arguments."""
    if checkpoint is None:
        return 'expert'
    try:
        args = json.loads((pathlib.Path(checkpoint) / 'training_args.json').read_text())
        return 'model' if args['config'].get('use_instruction', True) else 'blind'
    except (OSError, ValueError, KeyError):
        return 'model'


def summary_keys(episode: dict) -> list:
    """
    Return the summary rows an episode counts in: its family, and family/relation if any.

    'pick_place/next_to' and 'pick_place/on' then read off the results file instead of being
    worked out from the seeds again (sessions 20-32 did that by hand).
    """
    keys = [episode['family']]
    if episode.get('relation'):
        keys.append(f"{episode['family']}/{episode['relation']}")
    return keys


def summarise(episodes: list) -> dict:
    """Return {family or family/relation: {episodes, successes, success_rate}} plus 'all'."""
    counts: dict = {}  # key -> [episodes, successes], one pass over the episodes
    for episode in episodes:
        for key in summary_keys(episode) + ['all']:
            tally = counts.setdefault(key, [0, 0])
            tally[0] += 1
            tally[1] += bool(episode['success'])
    summary = {}
    for key in sorted(k for k in counts if k != 'all') + ['all']:
        total, wins = counts.get(key, (0, 0))
        summary[key] = {'episodes': total, 'successes': wins,
                        'success_rate': wins / total if total else 0.0}
    return summary


def _save_frame(client, directory: pathlib.Path, name: str) -> Optional[str]:
    import cv2
    frame = client.latest_frame()
    if frame is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f'{name}.png'
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return path.name


def evaluate(args: argparse.Namespace) -> dict:
    """Run the episodes; return (and write) the results dict."""
    from humanoid_interfaces.action import ExecuteVLATask
    from humanoid_interfaces.srv import ResetSimulation
    from std_srvs.srv import Trigger

    from vla_sim_bridge.experiments.rosclient import ExperimentClient, use_domain

    use_domain(args.domain_id)
    out = pathlib.Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    frames_dir = out.parent / f'{out.stem}_frames'
    budgets = step_budgets(args.max_steps)
    extra_server_args = server_overrides(args.server_param)
    error_names = {getattr(ExecuteVLATask.Result, n): n for n in dir(ExecuteVLATask.Result)
                   if n.isupper() and isinstance(getattr(ExecuteVLATask.Result, n), int)}
    results = results_header(args, budgets, frames_dir.name)
    started = time.monotonic()
    with NodeProcesses(out.parent / f'{out.stem}_logs') as nodes:
        nodes.start('bridge', 'vla_sim_bridge', 'vla_sim_bridge', [
            '--params-file', str(CONFIG / 'sim.yaml'), '-p', 'real_time_factor:=1.0'])
        if not args.expert:
            nodes.start('server', 'vla_server', 'vla_server', [
                '--params-file', str(CONFIG / 'vla_server.yaml'),
                '-p', 'policy_backend:=custom',
                '-p', f'policy_checkpoint:={pathlib.Path(args.checkpoint).resolve()}',
                '-p', 'success_service:=/vla_sim/task_success',
                '-p', 'success_check_period:=1', '-p', 'control_rate_hz:=10.0',
                '-p', f'camera_timeout_s:={float(args.camera_timeout)}',
                '-p', f'workspace_min:={SIM_WORKSPACE_MIN}',
                '-p', f'workspace_max:={SIM_WORKSPACE_MAX}',
                *extra_server_args])
        client = ExperimentClient('vla_sim_evaluate', camera_topic='/head_camera/image_raw')
        try:
            client.wait_for_service(ResetSimulation, '/vla_sim/reset', 120.0, nodes.check_alive)
            client.wait_for_service(Trigger, '/vla_sim/run_expert', 120.0, nodes.check_alive)
            if not args.expert:
                action = client.action_client(ExecuteVLATask, '/execute_vla_task')
                deadline = time.monotonic() + 300.0
                while not action.wait_for_server(timeout_sec=1.0):
                    nodes.check_alive()
                    if time.monotonic() > deadline:
                        raise TimeoutError('/execute_vla_task not available')
            per_family_frames = {}
            for index in range(args.episodes):
                nodes.check_alive()
                seed, family, reset = client.reset_for_episode(args, index)
                if not reset.accepted:
                    raise RuntimeError(f'seed {seed}: reset refused: {reset.message}')
                time.sleep(args.settle)
                keep = per_family_frames.get(family, 0) < args.frame_episodes
                per_family_frames[family] = per_family_frames.get(family, 0) + 1
                tag = f'{family}_seed{seed}'
                frames = [_save_frame(client, frames_dir, f'{tag}_0')] if keep else []
                budget = budgets[family]
                t0 = time.monotonic()
                if args.expert:
                    response = client.call(Trigger, '/vla_sim/run_expert', Trigger.Request(),
                                           timeout=120.0)
                    found = re.search(r'ran (\d+) steps', response.message)
                    episode = {'success': bool(response.success),
                               'steps': int(found.group(1)) if found else None,
                               'error_code': None, 'error': None, 'message': response.message}
                else:
                    marks = {budget // 3, 2 * budget // 3} if keep else set()

                    def on_feedback(msg, marks=marks, tag=tag, frames=frames) -> None:
                        step = msg.feedback.current_step
                        if step in marks:
                            marks.discard(step)
                            frames.append(_save_frame(client, frames_dir, f'{tag}_{step}'))

                    goal = ExecuteVLATask.Goal(instruction=reset.instruction_used,
                                               max_steps=budget)
                    try:
                        accepted, result = client.run_goal(
                            ExecuteVLATask, '/execute_vla_task', goal,
                            timeout=budget * 0.5 + 60.0, on_feedback=on_feedback)
                    except TimeoutError as error:
                        accepted, result = None, str(error)
                    if accepted is None:
                        episode = {'success': False, 'steps': None, 'error_code': None,
                                   'error': 'NO_RESULT', 'message': result}
                    elif not accepted or result is None:
                        episode = {'success': False, 'steps': 0, 'error_code': None,
                                   'error': 'GOAL_REJECTED', 'message': 'goal rejected'}
                    else:
                        episode = {'success': bool(result.success),
                                   'steps': int(result.steps_executed),
                                   'error_code': int(result.error_code),
                                   'error': error_names.get(result.error_code),
                                   'message': result.message}
                if keep:
                    time.sleep(0.15)
                    frames.append(_save_frame(client, frames_dir, f'{tag}_end'))
                episode.update(seed=seed, family=family, split=args.split,
                               relation=sample_task(seed, family, args.split).relation,
                               instruction=reset.instruction_used, max_steps=budget,
                               wall_s=round(time.monotonic() - t0, 2),
                               frames=[f for f in frames if f])
                results['episodes'].append(episode)
                print(f'[{index + 1}/{args.episodes}] {results["label"]} {args.split} seed {seed} '
                      f'{family:<10} {"success" if episode["success"] else "failure"} '
                      f'steps {episode["steps"]} {episode["error"] or ""} '
                      f'{reset.instruction_used!r}', flush=True)
        finally:
            client.close()
    results['summary'] = summarise(results['episodes'])
    results['wall_seconds'] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(results, indent=2) + '\n')
    for family, stats in results['summary'].items():
        print(f'{results["label"]} {args.split} {family}: {stats["successes"]}/'
              f'{stats["episodes"]} = {stats["success_rate"]:.0%}', flush=True)
    print(f'results: {out}', flush=True)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of vla-sim-evaluate."""
    args = build_parser().parse_args(argv)
    if args.episodes < 1:
        build_parser().error('--episodes must be at least 1')
    evaluate(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
