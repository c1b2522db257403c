"""
vla-sim-diagnose: in-process rollouts sorted by what went wrong, for one task family.

    vla-sim-diagnose CHECKPOINT --episodes 20 --split train --seed-start 10001 --seed-step 2
    vla-sim-diagnose CHECKPOINT --family touch --episodes 20 --seed-start 10000 --seed-step 2
    vla-sim-diagnose --expert --episodes 20 --split train --seed-start 10000

pick_place: see `pick_diagnosis` (never closed / missed / picked the place reference / wrong
object / not placed). touch: see `touch_diagnosis` (a look-alike, another object, or nothing
touched first). The episodes run as the server runs the policy, without ROS. For a checkpoint
with grounding maps, each episode also says which object map 0 pointed at in the first frame,
and the summary whether the hand went there (see `map_following`).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
import json
import pathlib
from typing import Optional, Sequence

from humanoid_vla.control.controller import DEFAULT_REPLAN_STEPS
from humanoid_vla.evaluation.map_following import (FirstFrameMap, format_following,
                                                   summarize_following)
from humanoid_vla.evaluation.pick_diagnosis import (EpisodeDiagnosis, format_summary, MAX_STEPS,
                                                    run_episode, summarize)
from humanoid_vla.evaluation.rollout import expert_actor, policy_actors
from humanoid_vla.evaluation.touch_diagnosis import (format_touch_summary, MAX_TOUCH_STEPS,
                                                     run_touch_episode, summarize_touches,
                                                     TouchDiagnosis)
from humanoid_vla.sim.tasks import sample_task
import numpy as np


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog='vla-sim-diagnose', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('checkpoint', nargs='?', help='checkpoint directory of the custom VLA')
    source.add_argument('--expert', action='store_true', help='diagnose the scripted expert')
    parser.add_argument('--family', default='pick_place', choices=['pick_place', 'touch'],
                        help='task family to diagnose (touch: see touch_diagnosis)')
    parser.add_argument('--episodes', type=int, default=20, help='episodes')
    parser.add_argument('--seed-start', type=int, default=10000)
    parser.add_argument('--seed-step', type=int, default=1,
                        help="2 with --seed-start 10001 gives vla-sim-evaluate's pick_place "
                             'seeds (it alternates task families)')
    parser.add_argument('--split', default='train', choices=['train', 'novel'])
    parser.add_argument('--max-steps', type=int, default=None,
                        help=f'step budget (default: {MAX_STEPS} for pick_place, '
                             f'{MAX_TOUCH_STEPS} for touch, as vla-sim-evaluate)')
    parser.add_argument('--substeps', type=int, default=1,
                        help='apply each action this many times per tick, as the bridge does '
                             'at every physics step (5 with config/sim.yaml)')
    parser.add_argument('--observation-delay', type=int, default=0,
                        help='act on the frame and joint states of this many ticks before')
    parser.add_argument('--replan-steps', type=int, default=DEFAULT_REPLAN_STEPS,
                        help="actions of each chunk executed before asking again (the server's "
                             'replan_steps and its default)')
    parser.add_argument('--temporal-ensembling', action='store_true',
                        help="blend overlapping chunks (the server's temporal_ensembling)")
    parser.add_argument('--out', help='write every episode and the summary to this JSON file')
    return parser


def reached_first(episode: TouchDiagnosis | EpisodeDiagnosis) -> tuple[str, ...]:
    """Return what the hand reached first: the first touched, or nearest the first closing."""
    if isinstance(episode, TouchDiagnosis):
        return episode.first_touched
    return (episode.closings[0].nearest,) if episode.closings else ()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of vla-sim-diagnose."""
    args = build_parser().parse_args(argv)
    if args.max_steps is None:
        args.max_steps = MAX_TOUCH_STEPS if args.family == 'touch' else MAX_STEPS
    if min(args.episodes, args.max_steps, args.seed_step, args.substeps, args.replan_steps) < 1:
        raise SystemExit('--episodes, --max-steps, --seed-step, --substeps and --replan-steps '
                         'must be at least 1')
    # MUJOCO_GL must be chosen before mujoco is first imported.
    from humanoid_vla.sim.gl import select_gl_backend
    if select_gl_backend() is None:
        raise SystemExit('no offscreen OpenGL backend works here: install the packages in '
                         'tools/sim_system_packages.txt (EGL or OSMesa)')
    from humanoid_vla.sim.episode_runner import SimEnvironment

    first_frame = None
    if args.expert:
        make_actor, label = expert_actor, 'expert'
    else:
        from humanoid_vla.policies.custom import CustomVLAPolicy
        policy = CustomVLAPolicy(args.checkpoint, temporal_ensembling=args.temporal_ensembling)
        make_actor = policy_actors(policy, args.observation_delay, args.replan_steps)
        label = args.checkpoint
        if args.observation_delay:
            label += f', observations {args.observation_delay} tick(s) late'
        if args.temporal_ensembling:
            label += ', temporal ensembling'
        if args.replan_steps != DEFAULT_REPLAN_STEPS:
            label += f', replanning every {args.replan_steps} steps'
        if policy.config.grounding_maps:
            make_actor = first_frame = FirstFrameMap(policy, make_actor)
    if args.substeps > 1:
        label += f', {args.substeps} substeps a tick'
    env = SimEnvironment()
    episodes = []
    try:
        seeds = range(args.seed_start, args.seed_start + args.episodes * args.seed_step,
                      args.seed_step)
        for seed in seeds:
            task = sample_task(seed, args.family, args.split)
            if args.family == 'touch':
                episode = run_touch_episode(env, task, make_actor, args.max_steps,
                                            args.substeps)
                parts = [f'{name} ({part} {100 * distance:.1f} cm)'
                         for name, (part, distance) in episode.first_touch_parts.items()]
                where = (f'first touched {", ".join(parts) or "nothing"}, '
                         f'hand {100 * episode.target_offset_m:.1f} cm from the target, '
                         f"{100 * episode.spot_offset_m:.1f} cm from the expert's spot")
            else:
                episode = run_episode(env, task, make_actor, args.max_steps, args.substeps)
                first = episode.closings[0] if episode.closings else None
                where = (f'first closing {100 * first.target_distance_m:.1f} cm from the '
                         f'target, nearest {first.nearest}' if first else 'never closed')
            if first_frame is not None:
                episode.map0_object = first_frame.nearest
                where += f', map 0 at first on {first_frame.nearest}'
                if args.family == 'touch':
                    episode.map0_spot_offset_m = float(np.hypot(
                        *(first_frame.point[:2] - episode.expert_spot)))
                    where += f" {100 * episode.map0_spot_offset_m:.1f} cm from the expert's spot"
            print(f'seed {seed} {episode.outcome:<17} {episode.steps:3d} steps  {where}  '
                  f'{episode.instruction!r}', flush=True)
            episodes.append(episode)
    finally:
        env.close()
    title = f'{label} ({args.split} split, seeds {seeds.start}-{seeds[-1]})'
    if args.family == 'touch':
        summary = summarize_touches(episodes)
        print(format_touch_summary(title, summary))
    else:
        summary = summarize(episodes)
        print(format_summary(title, summary))
    if first_frame is not None:
        summary['map0'] = summarize_following(
            [e.target for e in episodes], [e.map0_object for e in episodes],
            [reached_first(e) for e in episodes], [e.outcome == 'success' for e in episodes])
        print(format_following(summary['map0']))
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({'label': label, 'family': args.family,
                                   'split': args.split, 'summary': summary,
                                   'episodes': [asdict(e) for e in episodes]}, indent=1))
    return 0
