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
Record scripted-expert demonstrations in the simulation through the real nodes.

    vla-sim-record --episodes 120 --out data/sim_demos --seed-start 0 --families touch,pick_place

Starts the bridge (vla_sim_bridge, config/sim.yaml, real_time_factor 1) and the recorder
(vla_collector, config/vla_collector.yaml, sample_rate_hz 10), waits until the graph shows the
recorder subscribed to the bridge's camera, joint and command topics, and, for seed S, S+1, ...:
resets the world (train split, families in turn), starts an episode with the instruction the
world was set up for, lets the bridge's scripted expert drive the robot over the command topics,
and stops the episode with the expert's success. Writes <out>/<name>.hdf5 and validates it
(also after a node died: the episodes already saved stay usable). Node logs go to <out>/logs/.
"""

import argparse
import json
import pathlib
import sys
import time
from typing import Optional, Sequence

from vla_sim_bridge.launcher import CONFIG, NodeProcesses


def parse_families(text: str) -> list:
    """Split 'touch,pick_place' into a list of family names."""
    families = [f.strip() for f in text.split(',') if f.strip()]
    if not families:
        raise argparse.ArgumentTypeError('no task family given')
    return families


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog='vla-sim-record', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--episodes', type=int, required=True, help='episodes to record')
    parser.add_argument('--out', default='data/sim_demos', help='output directory (data_dir)')
    parser.add_argument('--name', default='sim_demos', help='dataset name (<out>/<name>.hdf5)')
    parser.add_argument('--seed-start', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--families', type=parse_families, default=['touch', 'pick_place'],
                        help='comma-separated task families, used in turn')
    parser.add_argument('--split', default='train', choices=['train', 'novel'])
    parser.add_argument('--settle', type=float, default=0.5,
                        help='seconds between reset and the start of recording')
    parser.add_argument('--append', action='store_true',
                        help='add to a dataset that already holds episodes (else refuse)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID for the nodes and this client (default: inherited)')
    return parser


def recorded_episodes(dataset: pathlib.Path) -> int:
    """Return how many episodes a dataset file already links (0 when there is no file)."""
    if not dataset.exists():
        return 0
    import h5py
    with h5py.File(dataset, 'r') as handle:
        return len(handle['data']) if 'data' in handle else 0


def recorded_topics(config: pathlib.Path = CONFIG / 'vla_collector.yaml') -> list:
    """Return the topics the recorder takes from the bridge: cameras, joints, hand commands."""
    import yaml
    with open(config, encoding='utf-8') as handle:
        parameters = yaml.safe_load(handle)['vla_collector']['ros__parameters']
    return [*parameters['camera_topics'], parameters['joint_states_topic'],
            parameters['right_hand_pose_topic'], parameters['right_gripper_topic']]


def record(args: argparse.Namespace) -> dict:
    """Record the episodes; return a summary dict (also printed)."""
    from humanoid_interfaces.srv import ResetSimulation, StartEpisode
    from humanoid_vla.data.validate import format_report, validate_file
    from std_srvs.srv import SetBool, Trigger

    from vla_sim_bridge.experiments.rosclient import ExperimentClient, use_domain

    use_domain(args.domain_id)
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = {'episodes': 0, 'expert_success': 0, 'failed_calls': 0, 'per_family': {},
               'aborted': None, 'seeds': [args.seed_start, args.seed_start + args.episodes - 1]}
    started = time.monotonic()
    with NodeProcesses(out / 'logs') as nodes:
        nodes.start('bridge', 'vla_sim_bridge', 'vla_sim_bridge', [
            '--params-file', str(CONFIG / 'sim.yaml'), '-p', 'real_time_factor:=1.0'])
        nodes.start('recorder', 'vla_collector', 'vla_collector', [
            '--params-file', str(CONFIG / 'vla_collector.yaml'), '-p', f'data_dir:={out}',
            '-p', f'dataset_name:={args.name}', '-p', 'sample_rate_hz:=10.0'])
        client = ExperimentClient('vla_sim_record')
        try:
            for name, srv in (('/vla_sim/reset', ResetSimulation),
                              ('/vla_sim/run_expert', Trigger),
                              ('/vla_collector/start_episode', StartEpisode),
                              ('/vla_collector/discard_episode', Trigger),
                              ('/vla_collector/stop_episode', SetBool)):
                client.wait_for_service(srv, name, timeout=120.0, alive=nodes.check_alive)
            client.wait_for_connections(recorded_topics(), 'vla_sim', 'vla_collector',
                                        timeout=120.0, alive=nodes.check_alive)
            for index in range(args.episodes):
                nodes.check_alive()
                seed, family, reset = client.reset_for_episode(args, index)
                if not reset.accepted:
                    print(f'seed {seed}: reset refused: {reset.message}', flush=True)
                    summary['failed_calls'] += 1
                    continue
                time.sleep(args.settle)
                start = client.start_recording(reset.instruction_used)
                if not start.accepted:
                    print(f'seed {seed}: start_episode refused: {start.message}', flush=True)
                    summary['failed_calls'] += 1
                    continue
                expert = client.call(Trigger, '/vla_sim/run_expert', Trigger.Request(),
                                     timeout=120.0)
                stop = client.stop_recording(bool(expert.success))
                family_stats = summary['per_family'].setdefault(family, [0, 0])
                family_stats[0] += 1
                family_stats[1] += int(expert.success)
                summary['episodes'] += int(stop.success)
                summary['expert_success'] += int(expert.success)
                if not stop.success:
                    summary['failed_calls'] += 1
                print(f'[{index + 1}/{args.episodes}] seed {seed} {family:<10} '
                      f'{"success" if expert.success else "FAILURE"}  {expert.message}; '
                      f'{reset.instruction_used!r}; stop: {stop.message}', flush=True)
        except (RuntimeError, TimeoutError) as error:
            # A node died or stopped answering: keep what is durable and say so.
            summary['aborted'] = f'{type(error).__name__}: {error}'
            print(f'recording aborted: {summary["aborted"]}', flush=True)
        finally:
            client.close()
    path = out / f'{args.name}.hdf5'
    report = validate_file(path)
    summary.update(file=str(path), valid=report.ok, recorded_episodes=len(report.episodes),
                   recorded_steps=sum(e.length or 0 for e in report.episodes),
                   wall_seconds=round(time.monotonic() - started, 1))
    print(format_report(report, quiet=True) or f'{path}: OK', flush=True)
    print(json.dumps(summary, indent=2), flush=True)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of vla-sim-record."""
    args = build_parser().parse_args(argv)
    dataset = pathlib.Path(args.out) / f'{args.name}.hdf5'
    existing = recorded_episodes(dataset)
    if existing and not args.append:
        # The recorder numbers new episodes after the old ones: rerunning a recording command
        # would silently double the dataset.
        raise SystemExit(f'{dataset} already holds {existing} episodes; pass --append to add '
                         f'{args.episodes} more, or choose another --out or --name')
    summary = record(args)
    return 0 if summary['valid'] and summary['episodes'] == args.episodes else 1


if __name__ == '__main__':
    sys.exit(main())
