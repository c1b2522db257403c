"""
Last line of defence between a policy and the robot.

A learned policy can emit anything; the filter refuses non-finite commands outright and bounds
the rest: hands stay in a workspace box, move at most a fixed distance and angle per control tick,
grippers stay in range and the base only moves if a velocity limit allows it. Every clamp is
counted so that a policy fighting its limits shows up in the logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Mapping

from humanoid_vla.actions import HumanoidAction, Pose, QUATERNION_MIN_NORM
import numpy as np

CLAMP_KINDS = ('workspace', 'position_step', 'rotation_step', 'gripper', 'base_velocity')
_HANDS = ('left_hand_pose', 'right_hand_pose')
_GRIPPERS = ('left_gripper', 'right_gripper')


class InvalidSafetyLimitsError(ValueError):
    """Raised for limits that are inconsistent or would not bound anything."""


class UnsafeActionError(ValueError):
    """Raised for a command that cannot be made safe by clamping (non-finite, zero quaternion)."""


def _vector(value: Any, name: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidSafetyLimitsError(f'{name} must be numeric: {error}') from None
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise InvalidSafetyLimitsError(f'{name} must be 3 finite numbers, got {value!r}')
    return array


def _positive(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidSafetyLimitsError(f'{name} must be a number, got {value!r}') from None
    if not math.isfinite(number) or number <= 0.0:
        raise InvalidSafetyLimitsError(f'{name} must be finite and > 0, got {value!r}')
    return number


@dataclass
class SafetyLimits:
    """Bounds on commanded hand poses (in the command frame), grippers and base velocity."""

    workspace_min: np.ndarray
    workspace_max: np.ndarray
    max_position_step: float
    max_rotation_step: float
    gripper_min: float = 0.0
    gripper_max: float = 1.0
    max_base_velocity: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Coerce values and refuse limits that would not bound anything."""
        self.workspace_min = _vector(self.workspace_min, 'workspace_min')
        self.workspace_max = _vector(self.workspace_max, 'workspace_max')
        if not np.all(self.workspace_min < self.workspace_max):
            raise InvalidSafetyLimitsError(
                f'workspace_min must be below workspace_max on every axis: '
                f'{self.workspace_min} vs {self.workspace_max}')
        self.max_position_step = _positive(self.max_position_step, 'max_position_step')
        self.max_rotation_step = _positive(self.max_rotation_step, 'max_rotation_step')
        try:
            self.gripper_min = float(self.gripper_min)
            self.gripper_max = float(self.gripper_max)
        except (TypeError, ValueError):
            raise InvalidSafetyLimitsError('gripper_min and gripper_max must be numbers') from None
        if not (math.isfinite(self.gripper_min) and math.isfinite(self.gripper_max)) \
                or self.gripper_min > self.gripper_max:
            raise InvalidSafetyLimitsError(
                f'need finite gripper_min <= gripper_max, got {self.gripper_min} and '
                f'{self.gripper_max}')
        if self.max_base_velocity is not None:
            self.max_base_velocity = _vector(self.max_base_velocity, 'max_base_velocity')
            if np.any(self.max_base_velocity < 0):
                raise InvalidSafetyLimitsError(
                    f'max_base_velocity must be >= 0, got {self.max_base_velocity}')

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SafetyLimits:
        """Build limits from config values, refusing unknown keys so typos are not ignored."""
        known = {'workspace_min', 'workspace_max', 'max_position_step', 'max_rotation_step',
                 'gripper_min', 'gripper_max', 'max_base_velocity'}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidSafetyLimitsError(
                f'unknown safety limit key(s) {unknown}; known keys: {sorted(known)}')
        required = ('workspace_min', 'workspace_max', 'max_position_step', 'max_rotation_step')
        missing = [k for k in required if k not in values]
        if missing:
            raise InvalidSafetyLimitsError(f'safety limits are missing key(s) {missing}')
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """Return config values that from_dict accepts."""
        return {
            'workspace_min': self.workspace_min.tolist(),
            'workspace_max': self.workspace_max.tolist(),
            'max_position_step': self.max_position_step,
            'max_rotation_step': self.max_rotation_step,
            'gripper_min': self.gripper_min,
            'gripper_max': self.gripper_max,
            'max_base_velocity': (None if self.max_base_velocity is None
                                  else self.max_base_velocity.tolist()),
        }


def quaternion_angle(q0: np.ndarray, q1: np.ndarray) -> float:
    """Return the rotation angle in radians between two unit quaternions (shortest path)."""
    if float(np.dot(q0, q1)) < 0.0:
        q1 = -q1
    return 4.0 * math.atan2(float(np.linalg.norm(q0 - q1)), float(np.linalg.norm(q0 + q1)))


def slerp(q0: np.ndarray, q1: np.ndarray, fraction: float) -> np.ndarray:
    """Interpolate between unit quaternions along the shortest arc; fraction 0 gives q0."""
    if float(np.dot(q0, q1)) < 0.0:
        q1 = -q1
    half_angle = quaternion_angle(q0, q1) / 2.0
    if half_angle < 1e-12:
        result = q0 + fraction * (q1 - q0)
    else:
        sin_half = math.sin(half_angle)
        result = (math.sin((1.0 - fraction) * half_angle) / sin_half * q0
                  + math.sin(fraction * half_angle) / sin_half * q1)
    return result / np.linalg.norm(result)


@dataclass
class SafetyResult:
    """The filtered action and how many clamps of each kind this call applied."""

    action: HumanoidAction
    clamps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLAMP_KINDS, 0))

    @property
    def clamped(self) -> bool:
        """Return True when anything was changed beyond quaternion normalisation."""
        return any(self.clamps.values())


def _check_finite(action: HumanoidAction, label: str) -> None:
    for name in _HANDS:
        pose = getattr(action, name)
        if pose is None:
            continue
        for attribute in ('position', 'orientation'):
            if not np.all(np.isfinite(getattr(pose, attribute))):
                raise UnsafeActionError(
                    f'{label}{name}.{attribute} is not finite: {getattr(pose, attribute)}')
    for name in _GRIPPERS:
        value = getattr(action, name)
        if value is not None and not math.isfinite(value):
            raise UnsafeActionError(f'{label}{name} is not finite: {value}')
    if action.base_velocity is not None and not np.all(np.isfinite(action.base_velocity)):
        raise UnsafeActionError(f'{label}base_velocity is not finite: {action.base_velocity}')


def _unit(quaternion: np.ndarray, label: str) -> np.ndarray:
    norm = float(np.linalg.norm(quaternion))
    if norm < QUATERNION_MIN_NORM:
        raise UnsafeActionError(f'{label} quaternion {quaternion} is zero; it encodes no rotation')
    return quaternion / norm


class SafetyFilter:
    """Apply SafetyLimits to each command relative to the previous one, counting clamps."""

    def __init__(self, limits: SafetyLimits) -> None:
        """Wrap the limits and start the cumulative clamp counters at zero."""
        if not isinstance(limits, SafetyLimits):
            raise InvalidSafetyLimitsError(
                f'SafetyFilter needs SafetyLimits, got {type(limits).__name__}')
        self.limits = limits
        self.total_clamps: dict[str, int] = dict.fromkeys(CLAMP_KINDS, 0)

    def reset(self) -> None:
        """Zero the cumulative clamp counters (e.g. at the start of an episode)."""
        self.total_clamps = dict.fromkeys(CLAMP_KINDS, 0)

    def apply(self, action: HumanoidAction,
              previous: HumanoidAction | None = None) -> SafetyResult:
        """Return a new, bounded action; previous is the last command actually sent."""
        _check_finite(action, '')
        if previous is not None:
            _check_finite(previous, 'previous ')
        clamps = dict.fromkeys(CLAMP_KINDS, 0)
        values: dict[str, Any] = {}
        for name in _HANDS:
            pose = getattr(action, name)
            if pose is None:
                continue
            last = getattr(previous, name) if previous is not None else None
            values[name] = self._limit_pose(pose, last, name, clamps)
        for name in _GRIPPERS:
            value = getattr(action, name)
            if value is None:
                continue
            bounded = min(max(value, self.limits.gripper_min), self.limits.gripper_max)
            clamps['gripper'] += int(bounded != value)
            values[name] = bounded
        if action.base_velocity is not None:
            values['base_velocity'] = self._limit_base(action.base_velocity, clamps)
        for kind, count in clamps.items():
            self.total_clamps[kind] += count
        return SafetyResult(HumanoidAction(**values), clamps)

    def _limit_pose(self, pose: Pose, last: Pose | None, name: str,
                    clamps: dict[str, int]) -> Pose:
        limits = self.limits
        orientation = _unit(pose.orientation, name)
        position = np.clip(pose.position, limits.workspace_min, limits.workspace_max)
        clamps['workspace'] += int(not np.array_equal(position, pose.position))
        if last is None:
            return Pose(position, orientation)
        # The step limit wins over the box: a hand last commanded outside the box walks back
        # in at max_position_step per tick instead of jumping.
        step = position - last.position
        distance = float(np.linalg.norm(step))
        if distance > limits.max_position_step:
            position = last.position + step * (limits.max_position_step / distance)
            clamps['position_step'] += 1
        last_orientation = _unit(last.orientation, f'previous {name}')
        angle = quaternion_angle(last_orientation, orientation)
        if angle > limits.max_rotation_step:
            orientation = slerp(last_orientation, orientation, limits.max_rotation_step / angle)
            clamps['rotation_step'] += 1
        return Pose(position, orientation)

    def _limit_base(self, velocity: np.ndarray, clamps: dict[str, int]) -> np.ndarray:
        limit = self.limits.max_base_velocity
        bounded = np.zeros(3) if limit is None else np.clip(velocity, -limit, limit)
        clamps['base_velocity'] += int(not np.array_equal(bounded, velocity))
        return bounded
