"""Decide whether an ExecuteVLATask goal can run, and with how many steps."""

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class GoalLimits:
    """What the server accepts; all values come from its parameters."""

    default_max_steps: int
    max_steps_limit: int
    max_instruction_length: int

    def __post_init__(self) -> None:
        if not 0 < self.default_max_steps <= self.max_steps_limit:
            raise ValueError(
                f'need 0 < default_max_steps ({self.default_max_steps}) <= max_steps_limit '
                f'({self.max_steps_limit})')
        if self.max_instruction_length < 1:
            raise ValueError('max_instruction_length must be at least 1')


@dataclass(frozen=True)
class GoalDecision:
    """The verdict on one goal: accepted with a step budget, or refused with a reason."""

    accepted: bool
    max_steps: int = 0
    reason: str = ''


def check_goal(instruction: str, max_steps: int, limits: GoalLimits,
               policy_error: Optional[str] = None) -> GoalDecision:
    """
    Return why a goal cannot run, or the number of steps it runs for.

    ``policy_error`` is the reason no policy is loaded (None when one is).
    """
    text = instruction.strip()
    if not text:
        return GoalDecision(False, reason='instruction is empty')
    if len(instruction) > limits.max_instruction_length:
        return GoalDecision(False, reason=(
            f'instruction has {len(instruction)} characters, more than the limit of '
            f'{limits.max_instruction_length}'))
    if max_steps < 0:
        return GoalDecision(False, reason=f'max_steps must be >= 0 (0 = default), got {max_steps}')
    if max_steps > limits.max_steps_limit:
        return GoalDecision(False, reason=(
            f"max_steps {max_steps} is above the server's limit of {limits.max_steps_limit}"))
    if policy_error is not None:
        return GoalDecision(False, reason=f'no policy is loaded: {policy_error}')
    return GoalDecision(True, max_steps=max_steps or limits.default_max_steps)
