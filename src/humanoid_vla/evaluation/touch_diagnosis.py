"""
Touch failure breakdown: a look-alike, another object, or nothing touched first.

    vla-sim-diagnose CHECKPOINT --family touch --episodes 20 --seed-start 10000 --seed-step 2

A touch counts only when the named object is among the first the hand touches. Closed-loop
numbers say how many touches failed, not whether the policy went for the wrong object (a
binding error: which of "orange block" and "orange cup" was meant) or for the right one and
brushed a neighbour on the way (a reaching error); each needs a different fix. Every episode
is sorted into one outcome:

    success            the named object was among the first touched
    same_colour_first  a neighbour of the named colour was touched first, not the target
    same_shape_first   a neighbour of the named shape was touched first
    other_first        an object sharing neither was touched first
    never_touched      the hand touched nothing within the step budget

No neighbour shares both (names are unique in a scene). With each episode goes how far
(horizontally) the grasp site was from the target's centre when the first touch happened, or
at the end when nothing was touched, and how far from the spot the scripted expert would have
come down over (`touch_plan`: clear of neighbours, with room to spare). Session 25: the default
checkpoint's successful touches came down a median 1.6-1.9 cm from that spot, its failed ones
6.7-8.4 cm.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import statistics
from typing import Callable, Collection, Optional, Sequence

from humanoid_vla.evaluation.rollout import Actor, roll_out
from humanoid_vla.sim.catalog import split_name
from humanoid_vla.sim.tasks import TaskSpec
import numpy as np

TOUCH_OUTCOMES = ('success', 'same_colour_first', 'same_shape_first', 'other_first',
                  'never_touched')
MAX_TOUCH_STEPS = 40  # vla-sim-evaluate's touch budget


@dataclass
class TouchDiagnosis:
    """One touch episode: its task, outcome, what was touched first and where the hand was."""

    seed: int
    instruction: str
    target: str
    outcome: str = ''
    steps: int = 0
    first_touched: tuple[str, ...] = ()
    first_touch_step: Optional[int] = None
    target_offset_m: Optional[float] = None  # grasp site to target centre, horizontally
    map0_object: Optional[str] = None  # nearest map 0's point at the first frame (map_following)
    # Grasp site to where the scripted expert would have come down (its touch spot, planned
    # after the reset), horizontally, at the first touch or the end.
    spot_offset_m: Optional[float] = None
    expert_spot: Optional[tuple[float, float]] = None  # the expert's touch spot (x, y), base frame
    # Map 0's first-frame point (map_following, at the target centre's height) to the expert's
    # spot: small where the map found the spot even when the hand came down elsewhere.
    map0_spot_offset_m: Optional[float] = None
    # For each object touched first: the hand body nearest it at that tick and how far (m): the
    # fingertips coming down, or the wrist and palm reaching a neighbour behind the target.
    first_touch_parts: dict[str, tuple[str, float]] = field(default_factory=dict)


def classify_touch(target: str, first_touched: Collection[str]) -> str:
    """Return the outcome for what the hand touched first (see TOUCH_OUTCOMES)."""
    if not first_touched:
        return 'never_touched'
    if target in first_touched:
        return 'success'
    colour, shape = split_name(target)
    touched = [split_name(name) for name in first_touched]
    if any(other_colour == colour for other_colour, _ in touched):
        return 'same_colour_first'
    if any(other_shape == shape for _, other_shape in touched):
        return 'same_shape_first'
    return 'other_first'


def nearest_hand_part(world, name: str, side: str = 'right') -> tuple[str, float]:
    """Return the hand body whose collision geoms come nearest the object, and that distance."""
    distance, geom = world.nearest_hand_geom(name, side)
    return world.model.body(int(world.model.geom_bodyid[geom])).name, float(distance)


def run_touch_episode(env, task: TaskSpec, make_actor: Callable[[object, TaskSpec], Actor],
                      max_steps: int = MAX_TOUCH_STEPS, substeps: int = 1) -> TouchDiagnosis:
    """Run one touch episode (``roll_out``) and diagnose it."""
    from humanoid_vla.sim.expert import ScriptedExpert
    diagnosis = TouchDiagnosis(task.seed, task.instruction, task.target)
    expert_spot = np.zeros(2)

    def plan_then_act(env_, task_: TaskSpec) -> Actor:
        expert_spot[:] = ScriptedExpert(env_.world, task_, env_.side).plan_touch()[0]
        diagnosis.expert_spot = (float(expert_spot[0]), float(expert_spot[1]))
        return make_actor(env_, task_)

    def offsets() -> tuple[float, float]:
        site, _ = env.world.hand_pose(env.side)
        centre, _ = env.world.object_pose(task.target)
        return float(np.hypot(*(site - centre)[:2])), float(np.hypot(*(site[:2] - expert_spot)))

    def watch(step: int) -> None:
        if env.first_touched and diagnosis.first_touch_step is None:
            diagnosis.first_touch_step = step
            diagnosis.target_offset_m, diagnosis.spot_offset_m = offsets()
            diagnosis.first_touch_parts = {
                name: nearest_hand_part(env.world, name, env.side)
                for name in sorted(env.first_touched)}

    _, diagnosis.steps = roll_out(env, task, plan_then_act, max_steps, substeps, on_tick=watch)
    diagnosis.first_touched = tuple(sorted(env.first_touched))
    if diagnosis.target_offset_m is None:
        diagnosis.target_offset_m, diagnosis.spot_offset_m = offsets()
    diagnosis.outcome = classify_touch(task.target, env.first_touched)
    return diagnosis


def summarize_touches(episodes: Sequence[TouchDiagnosis]) -> dict[str, object]:
    """Return outcome counts and the median hand-to-target and hand-to-spot offsets."""
    counts = Counter(e.outcome for e in episodes)
    return {
        'episodes': len(episodes),
        'outcomes': {name: counts.get(name, 0) for name in TOUCH_OUTCOMES},
        'target_offset_cm_median': median_cm_per_outcome(episodes, 'target_offset_m'),
        'spot_offset_cm_median': median_cm_per_outcome(episodes, 'spot_offset_m'),
        'map0_spot_offset_cm_median': median_cm_per_outcome(episodes, 'map0_spot_offset_m'),
    }


def median_cm_per_outcome(episodes: Sequence[TouchDiagnosis], field: str) -> dict[str, float]:
    """Return the median of an offset field (m) in cm for each outcome that has values."""
    medians = {}
    for name in TOUCH_OUTCOMES:
        values = [getattr(e, field) for e in episodes
                  if e.outcome == name and getattr(e, field) is not None]
        if values:
            medians[name] = round(100 * statistics.median(values), 1)
    return medians


def format_touch_summary(label: str, summary: dict[str, object]) -> str:
    """Return a few lines: outcomes, then how far from the target and the spot the hand was."""
    outcomes = ', '.join(f'{name} {count}' for name, count in summary['outcomes'].items())

    def medians(key: str) -> str:
        return ', '.join(f'{name} {value}' for name, value in summary.get(key, {}).items())
    return '\n'.join([f'{label}: {summary["episodes"]} touch episodes', f'  {outcomes}',
                      f'  grasp site to target centre at the first touch (or the end), '
                      f'median cm: {medians("target_offset_cm_median")}',
                      f"  grasp site to the expert's touch spot, median cm: "
                      f'{medians("spot_offset_cm_median")}']
                     + ([f"  map 0's first-frame point to the expert's touch spot, median cm: "
                         f'{medians("map0_spot_offset_cm_median")}']
                        if summary.get('map0_spot_offset_cm_median') else []))
