"""
One control tick: observation -> policy -> action chunk queue -> safety filter -> command.

The server calls ``VLAController.tick`` at its control rate. Chunks returned by the policy are
executed over successive ticks; the policy is queried again after ``replan_steps`` ticks or when
the chunk runs out.
"""

from collections import deque
from dataclasses import dataclass
import time
from typing import Mapping, Optional

from humanoid_vla.actions import (ACTION_PARTS, ActionSpec, HumanoidAction, InvalidActionError,
                                  Pose)
from humanoid_vla.policies.base import Observation, Policy
from humanoid_vla.safety import SafetyFilter, UnsafeActionError
import numpy as np


class PolicyError(RuntimeError):
    """The policy raised, or returned something that is not an action chunk of the spec."""


@dataclass
class TickOutcome:
    """What one tick commands, and what it cost."""

    action: HumanoidAction
    inference_ms: Optional[float]
    clamps: dict[str, int]


def goal_start_command(last_command: Optional[HumanoidAction],
                       measured: Mapping[str, Pose]) -> Optional[HumanoidAction]:
    """
    Return the command a new goal's first step is limited from.

    Why: the step limit (SafetyLimits.max_position_step) bounds each command relative to the
    previous one. Between goals the hand can move without the server (a simulation reset, a
    teleoperator, another controller); limiting from the last goal's final command would then
    drive the hand back towards where the last goal left it. ``measured`` maps hand parts
    ('right_hand_pose', 'left_hand_pose') to their measured poses; those replace the parts of
    the last command (grippers and the base keep their last command); a measured pose that fails
    the action checks (not finite, not a unit quaternion) is ignored (a faulty state topic must
    not end goals).
    None when nothing is known: the first step is then not limited.
    """
    for name in measured:
        if name not in ACTION_PARTS or ACTION_PARTS[name].kind != 'pose':
            raise ValueError(f'{name!r} is not a hand pose part')
    measured = {name: pose for name, pose in measured.items() if _valid(name, pose)}
    if last_command is None and not measured:
        return None
    parts = {name: getattr(last_command, name) if last_command is not None else None
             for name in ACTION_PARTS}
    parts.update({name: pose.copy() for name, pose in measured.items()})
    return HumanoidAction(**parts)


def _valid(name: str, pose: Pose) -> bool:
    """Return whether a pose passes the action checks (finite, unit quaternion)."""
    try:
        HumanoidAction(**{name: pose}).validate()
    except InvalidActionError:
        return False
    return True


# Actions of a chunk executed before the policy is asked again. Asked every tick, the
# simulation's default checkpoint (5-action chunks) hovered beside the place reference while
# each chunk's later actions already lowered the object: in-process pick-and-place 11/20 and
# 8/20 (train / novel) with 1, 14/20 and 10/20 with 3 (13/20 with 2 and with 5, train).
DEFAULT_REPLAN_STEPS = 3


class VLAController:
    """Turns observations into safe commands for one goal at a time."""

    def __init__(self, policy: Policy, spec: ActionSpec, safety_filter: SafetyFilter,
                 replan_steps: int = DEFAULT_REPLAN_STEPS) -> None:
        if replan_steps < 1:
            raise ValueError(f'replan_steps must be >= 1, got {replan_steps}')
        self.policy = policy
        self.spec = spec
        self.safety_filter = safety_filter
        self.replan_steps = replan_steps
        self._queue: deque[np.ndarray] = deque()
        self._since_query = 0
        self._previous: Optional[HumanoidAction] = None

    def start_goal(self, current: Optional[HumanoidAction] = None) -> None:
        """Forget the last goal's chunk and history; ``current`` is the robot's present pose."""
        self.policy.reset()
        self.safety_filter.reset()
        self._queue.clear()
        self._since_query = 0
        self._previous = current

    def tick(self, observation: Observation) -> TickOutcome:
        """Return the next safe command; raise UnsafeActionError or PolicyError to end the goal."""
        inference_ms = None
        if not self._queue or self._since_query >= self.replan_steps:
            inference_ms = self._query(observation)
        vector = self._queue.popleft()
        self._since_query += 1
        if not np.all(np.isfinite(vector)):
            bad = [name for name, value in zip(self.spec.dimension_names(), vector)
                   if not np.isfinite(value)]
            raise UnsafeActionError(f"policy returned a non-finite action in {', '.join(bad)}")
        try:
            action = HumanoidAction.from_vector(vector, self.spec)
        except ValueError as error:
            raise UnsafeActionError(f'policy action is not a valid command: {error}') from error
        result = self.safety_filter.apply(action, self._previous)
        self._previous = result.action
        return TickOutcome(result.action, inference_ms, result.clamps)

    def _query(self, observation: Observation) -> float:
        started = time.perf_counter()
        try:
            chunk = np.asarray(self.policy.predict(observation), dtype=np.float64)
        except Exception as error:  # noqa: BLE001 - any policy failure ends the goal cleanly
            raise PolicyError(f'policy failed: {type(error).__name__}: {error}') from error
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if chunk.ndim == 1:
            chunk = chunk[None, :]
        if chunk.ndim != 2 or chunk.shape[0] < 1 or chunk.shape[1] != self.spec.dim:
            raise PolicyError(
                f'policy returned shape {chunk.shape}; expected (chunk, {self.spec.dim}) for '
                f'action parts {list(self.spec.parts)}')
        self._queue = deque(chunk)
        self._since_query = 0
        return elapsed_ms
