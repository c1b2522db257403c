"""
Whether the hand goes where grounding map 0 points at an episode's first frame.

The grounding probe scores map 0 on first frames and the closed loop scores whole episodes;
neither says whether a failed episode had found the named object and went elsewhere (the
action head not following its own map) or followed a map that pointed at the wrong object.
Each needs a different fix. `vla-sim-diagnose` records, for a checkpoint with grounding
maps, the object nearest map 0's point at the first frame (`FirstFrameMap`) beside the object
the hand reached first (first touched, or nearest at the first closing), and counts:

    on the target       map 0 found the named object: then the episode succeeded, or not
    off the target      map 0 pointed elsewhere: then the hand went to that object first, or
                        the episode succeeded all the same
"""

from __future__ import annotations

from typing import Callable, Collection, Optional, Sequence

from humanoid_vla.evaluation.grounding import answer_point, model_camera, nearest_object
from humanoid_vla.evaluation.rollout import Actor, observe
from humanoid_vla.sim.tasks import TaskSpec
import numpy as np


class FirstFrameMap:
    """
    An actor factory that notes where map 0 points before the episode's first action.

    It wraps the factory `roll_out` calls right after the reset (``make_actor``): ``nearest``
    is then the object nearest map 0's point (carried along the camera ray to the height of
    the target's centre), the answer of `vla-grounding-probe` for the episode's instruction.
    """

    def __init__(self, policy, make_actor: Callable[[object, TaskSpec], Actor]) -> None:
        self.policy = policy
        self.make_actor = make_actor
        self.nearest: Optional[str] = None
        self.point: Optional[np.ndarray] = None  # map 0's base-frame point, target centre height

    def __call__(self, env, task: TaskSpec) -> Actor:
        positions = {name: env.world.object_pose(name)[0] for name in task.objects}
        self.point = answer_point(self.policy, observe(env, task.instruction), 'map',
                                  model_camera(self.policy, env.world.camera_in_base()),
                                  positions[task.target][2])
        self.nearest = nearest_object(self.point, positions)
        return self.make_actor(env, task)


def summarize_following(target: Sequence[str], mapped: Sequence[str],
                        reached: Sequence[Collection[str]],
                        success: Sequence[bool]) -> dict[str, int]:
    """
    Count episodes by whether map 0 was on the target and what the hand did then.

    Per episode: the ``target``, the object map 0 ``mapped`` at the first frame, the objects
    the hand ``reached`` first (none: it reached nothing) and its ``success``.
    """
    if not len(target) == len(mapped) == len(reached) == len(success):
        raise ValueError('target, mapped, reached and success must have one entry per episode')
    on = [i for i, name in enumerate(target) if mapped[i] == name]
    off = [i for i in range(len(target)) if mapped[i] != target[i]]
    return {
        'episodes': len(target),
        'on_target': len(on),
        'on_target_success': sum(success[i] for i in on),
        'off_target': len(off),
        'off_target_went_there': sum(mapped[i] in reached[i] for i in off),
        'off_target_success': sum(success[i] for i in off),
    }


def format_following(summary: dict[str, int]) -> str:
    """Return one line: map 0 on / off the target at the first frame, and what followed."""
    return (f'  map 0 at the first frame: on the target in {summary["on_target"]} of '
            f'{summary["episodes"]} (success then {summary["on_target_success"]}); off it in '
            f'{summary["off_target"]} (the hand went first to the object it pointed at '
            f'{summary["off_target_went_there"]}, success all the same '
            f'{summary["off_target_success"]})')
