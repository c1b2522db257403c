"""
vla-sim-record-recoveries: the policy drives, the scripted expert takes over, the rest is recorded.

    vla-sim-record-recoveries CHECKPOINT --episodes 700 --seed-start 70000 --out data/recover_a
        --name recover_a

Why: the expert's demonstrations only show the states on its own path. A policy trained on them
comes down a few centimetres off that path, where no demonstration says what to do, and a
touch then brushes a neighbour, a carried object is let go beside the wrong spot (see
docs/results). Here each episode runs the policy in-process as the server runs it, for a
random number of ticks (the handover), then hands the robot to the expert (`expert.take_over`),
which finishes the task from wherever the policy left it. Only the expert's part is recorded:
frames the policy brought about, each with the command the expert gave next. One handover
per episode: the first round of DAgger, labelled by a scripted teacher that acts on state.

Episodes are written with the recorder's layout and keys (obs/head_rgb, obs/joint_states,
obs/ee_pose, actions = the command in effect at each frame), so `vla-train` reads them beside
the recorder's files. Episodes the policy finishes (or, for a touch, decides) before the
handover are not recorded; those the expert then fails are saved with success false, as the
recorder saves them, and `successful_only` leaves them out of training.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import pathlib
import random
import time
from typing import Optional, Sequence

from humanoid_vla.actions import ActionSpec
from humanoid_vla.evaluation.pick_diagnosis import MAX_STEPS
from humanoid_vla.evaluation.rollout import roll_out
from humanoid_vla.evaluation.touch_diagnosis import MAX_TOUCH_STEPS
from humanoid_vla.sim.tasks import FAMILIES, sample_task, TaskSpec
import numpy as np

ACTION_PARTS = ['right_hand_pose', 'right_gripper']
# Ticks the policy drives before the expert takes over, drawn uniformly per episode. The
# default's touches take 6-10 ticks, its pick-and-places 30-60 (carry from about tick 15).
HANDOVER_TICKS = {'touch': (1, 7), 'pick_place': (2, 50)}


@dataclass
class RecoveryEpisode:
    """What happened in one episode: who finished it, and what was recorded."""

    seed: int
    family: str
    handover: int
    outcome: str  # 'recorded', 'policy finished', 'touch decided', 'holding another object'
    expert_success: bool = False
    recorded_steps: int = 0


def expert_phase(env, task: TaskSpec, expert, writer, max_steps: int,
                 substeps: int) -> tuple[bool, int]:
    """
    Let the expert finish the task, recording each frame with the command in effect.

    As the recorder samples the topics: a frame, then the command the expert sends after it;
    the last frame is the one at which the task is done. The first frame carries the expert's
    first command, as a recorded episode's first frame carries the pose the expert starts
    from: the policy's last command is no label. The episode's `first_segment` attribute says
    which gripper segment the expert starts in (1 with the target already in hand), so its
    frames train the grounding map of that segment. Returns (success, frames recorded).
    """
    from humanoid_vla.data.dataset import FIRST_SEGMENT_ATTRIBUTE

    share = 1.0 / (env.control_hz * substeps)
    first_segment = expert.segments_done
    command = expert.act()
    writer.begin_episode(task.instruction)
    success = False
    for step in range(max_steps + 1):
        seen = env.observe()
        writer.add_step({'head_rgb': seen['image'],
                         'joint_states': np.asarray(seen['joint_positions'], np.float32),
                         'ee_pose': np.asarray(command[:7], np.float32)},
                        np.asarray(command, np.float32), step / env.control_hz)
        success = env.success()
        if success or step == max_steps or (step > 0 and expert.done):
            break
        if step > 0:
            command = expert.act()
        for _ in range(substeps):
            env.apply_action(command, sim_seconds=share)
    writer.end_episode(success, {FIRST_SEGMENT_ATTRIBUTE: first_segment})
    return success, step + 1


def record_recovery(env, task: TaskSpec, make_actor, handover: int, writer,
                    substeps: int = 1) -> RecoveryEpisode:
    """Run one episode: the policy for ``handover`` ticks, then the expert, recorded."""
    from humanoid_vla.sim.expert import take_over

    episode = RecoveryEpisode(task.seed, task.family, handover, 'recorded')
    policy_finished, _ = roll_out(env, task, make_actor, handover, substeps)
    # A touch is decided by the first object touched, whatever the hand does after it.
    if policy_finished or env.first_touched:
        episode.outcome = 'policy finished' if policy_finished else 'touch decided'
        return episode
    expert = take_over(env.world, task, env.side)
    if expert is None:
        episode.outcome = 'holding another object'
        return episode
    budget = MAX_TOUCH_STEPS if task.family == 'touch' else MAX_STEPS
    episode.expert_success, episode.recorded_steps = expert_phase(
        env, task, expert, writer, budget, substeps)
    return episode


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog='vla-sim-record-recoveries', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='checkpoint directory of the custom VLA that drives')
    parser.add_argument('--episodes', type=int, default=100,
                        help='episodes to run (those the policy finishes record nothing)')
    parser.add_argument('--seed-start', type=int, default=70000,
                        help='first task seed (keep clear of the recordings and evaluations)')
    parser.add_argument('--families', default=','.join(FAMILIES),
                        help='comma-separated task families, taken in turn')
    parser.add_argument('--substeps', type=int, default=5,
                        help='apply each command this many times per tick, as the bridge does')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--name', required=True, help='dataset name (<out>/<name>.hdf5)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of vla-sim-record-recoveries."""
    args = build_parser().parse_args(argv)
    families = [name.strip() for name in args.families.split(',') if name.strip()]
    if not families or any(name not in FAMILIES for name in families):
        raise SystemExit(f'--families: choose from {", ".join(FAMILIES)}')
    if min(args.episodes, args.substeps) < 1:
        raise SystemExit('--episodes and --substeps must be at least 1')
    from humanoid_vla.sim.gl import select_gl_backend
    if select_gl_backend() is None:
        raise SystemExit('no offscreen OpenGL backend works here: install the packages in '
                         'tools/sim_system_packages.txt (EGL or OSMesa)')
    from humanoid_vla.data.episode_writer import EpisodeWriter
    from humanoid_vla.evaluation.rollout import policy_actors
    from humanoid_vla.policies.custom import CustomVLAPolicy
    from humanoid_vla.sim.episode_runner import SimEnvironment

    make_actor = policy_actors(CustomVLAPolicy(args.checkpoint))
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sources = {'recorder': 'vla-sim-record-recoveries', 'policy': args.checkpoint,
               'action_parts': ACTION_PARTS, 'substeps': args.substeps,
               'ee_pose': 'commanded hand pose (x y z qx qy qz qw), action-spec order',
               'handover_ticks': HANDOVER_TICKS}
    names = ActionSpec.from_config(ACTION_PARTS).dimension_names()
    env = SimEnvironment()
    episodes: list[RecoveryEpisode] = []
    started = time.monotonic()
    try:
        with EpisodeWriter(out / f'{args.name}.hdf5', sources=sources,
                           action_dimension_names=names) as writer:
            for index in range(args.episodes):
                seed = args.seed_start + index
                task = sample_task(seed, families[index % len(families)], 'train')
                low, high = HANDOVER_TICKS[task.family]
                handover = random.Random(seed).randint(low, high)
                episode = record_recovery(env, task, make_actor, handover, writer,
                                          args.substeps)
                episodes.append(episode)
                print(f'[{index + 1}/{args.episodes}] seed {seed} {task.family:<10} handover '
                      f'{handover:2d}: {episode.outcome}'
                      + (f', expert {"success" if episode.expert_success else "FAILURE"} '
                         f'({episode.recorded_steps} frames)'
                         if episode.outcome == 'recorded' else ''), flush=True)
    finally:
        env.close()
    summary = summarize(episodes)
    summary['wall_seconds'] = round(time.monotonic() - started, 1)
    print(json.dumps(summary, indent=2), flush=True)
    return 0


def summarize(episodes: Sequence[RecoveryEpisode]) -> dict:
    """Return counts per family and outcome, and the recorded frames."""
    summary: dict = {'episodes': len(episodes), 'per_family': {}}
    for episode in episodes:
        family = summary['per_family'].setdefault(
            episode.family, {'recorded': 0, 'expert_success': 0, 'frames': 0, 'skipped': {}})
        if episode.outcome == 'recorded':
            family['recorded'] += 1
            family['expert_success'] += int(episode.expert_success)
            family['frames'] += episode.recorded_steps
        else:
            family['skipped'][episode.outcome] = family['skipped'].get(episode.outcome, 0) + 1
    return summary
