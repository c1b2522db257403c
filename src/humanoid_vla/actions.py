"""
Action representation shared by policies, datasets, the safety filter and the ROS adapters.

Conventions: positions in metres, quaternions in xyzw order (the geometry_msgs order), grippers
from 0 (open) to 1 (closed), base velocity as (vx, vy) in m/s and wz in rad/s. A policy emits a
flat vector whose layout is described by an ActionSpec; HumanoidAction is the structured form
the robot side works with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import re
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

QUATERNION_MIN_NORM = 1e-6
UNIT_QUATERNION_TOLERANCE = 1e-3


class InvalidActionSpecError(ValueError):
    """Raised when an action spec names unknown or duplicate parts or an unsupported unit."""


class ActionSpecMismatchError(ValueError):
    """Raised when a vector's dimension does not match what the action spec expects."""

    def __init__(self, expected: int, got: int | tuple[int, ...], what: str = 'action vector',
                 parts: tuple[str, ...] | None = None) -> None:
        """Build the message from the expected and actual dimension."""
        self.expected = expected
        self.got = got
        layout = ''
        if parts:
            layout = ' (' + ' + '.join(f'{p}[{ACTION_PARTS[p].dim}]' for p in parts) + ')'
        if isinstance(got, tuple):
            got_text = f'shape {got}'
        else:
            got_text = f'dimension {got}'
        super().__init__(
            f'{what} does not match the action spec: expected dimension {expected}{layout}, '
            f'got {got_text}')


class InvalidActionError(ValueError):
    """Raised when an action is missing a required part or holds unusable values."""


@dataclass(frozen=True)
class ActionPart:
    """One named block of the flat action vector."""

    name: str
    fields: tuple[str, ...]
    kind: str  # "pose", "gripper" or "base_velocity"

    @property
    def dim(self) -> int:
        """Return the number of scalars this part occupies."""
        return len(self.fields)


_POSE_FIELDS = ('x', 'y', 'z', 'qx', 'qy', 'qz', 'qw')

ACTION_PARTS: Mapping[str, ActionPart] = MappingProxyType({
    'left_hand_pose': ActionPart('left_hand_pose', _POSE_FIELDS, 'pose'),
    'right_hand_pose': ActionPart('right_hand_pose', _POSE_FIELDS, 'pose'),
    'left_gripper': ActionPart('left_gripper', ('closure',), 'gripper'),
    'right_gripper': ActionPart('right_gripper', ('closure',), 'gripper'),
    'base_velocity': ActionPart('base_velocity', ('vx', 'vy', 'wz'), 'base_velocity'),
})

SUPPORTED_POSITION_UNITS = ('m',)
SUPPORTED_ROTATIONS = ('quat_xyzw',)
DEFAULT_PARTS = ('right_hand_pose', 'right_gripper')


@dataclass(frozen=True)
class ActionSpec:
    """Layout of the flat action vector; stored in checkpoints so a policy is never misread."""

    parts: tuple[str, ...] = DEFAULT_PARTS
    position_unit: str = 'm'
    rotation: str = 'quat_xyzw'

    def __post_init__(self) -> None:
        """Refuse empty, unknown or duplicate parts and unsupported conventions."""
        if isinstance(self.parts, str):
            raise InvalidActionSpecError(
                f'ActionSpec.parts must be a sequence of part names, not the string '
                f'{self.parts!r}; use ActionSpec.from_config for strings')
        parts = tuple(self.parts)
        object.__setattr__(self, 'parts', parts)
        if not parts:
            raise InvalidActionSpecError(
                f'an action spec needs at least one part; known parts: {sorted(ACTION_PARTS)}')
        unknown = [p for p in parts if p not in ACTION_PARTS]
        if unknown:
            raise InvalidActionSpecError(
                f'unknown action part(s) {unknown}; known parts: {sorted(ACTION_PARTS)}')
        duplicates = sorted({p for p in parts if parts.count(p) > 1})
        if duplicates:
            raise InvalidActionSpecError(f'action part(s) listed more than once: {duplicates}')
        if self.position_unit not in SUPPORTED_POSITION_UNITS:
            raise InvalidActionSpecError(
                f'unsupported position unit {self.position_unit!r}; '
                f'supported: {list(SUPPORTED_POSITION_UNITS)}')
        if self.rotation not in SUPPORTED_ROTATIONS:
            raise InvalidActionSpecError(
                f'unsupported rotation representation {self.rotation!r}; '
                f'supported: {list(SUPPORTED_ROTATIONS)}')

    @property
    def dim(self) -> int:
        """Return the length of the flat action vector."""
        return sum(ACTION_PARTS[p].dim for p in self.parts)

    def slices(self) -> dict[str, slice]:
        """Return where each part lives in the flat vector, in spec order."""
        result: dict[str, slice] = {}
        start = 0
        for name in self.parts:
            stop = start + ACTION_PARTS[name].dim
            result[name] = slice(start, stop)
            start = stop
        return result

    def dimension_names(self) -> list[str]:
        """Return one "part.field" label per dimension, e.g. "right_hand_pose.x"."""
        return [f'{p}.{f}' for p in self.parts for f in ACTION_PARTS[p].fields]

    def gripper_mask(self) -> np.ndarray:
        """Return a bool array that is True on gripper dimensions (often kept un-normalised)."""
        mask = np.zeros(self.dim, dtype=bool)
        for name, part_slice in self.slices().items():
            if ACTION_PARTS[name].kind == 'gripper':
                mask[part_slice] = True
        return mask

    def position_slices(self) -> dict[str, slice]:
        """Return the x, y, z slice of every hand pose part."""
        return {name: slice(s.start, s.start + 3)
                for name, s in self.slices().items() if ACTION_PARTS[name].kind == 'pose'}

    def quaternion_slices(self) -> dict[str, slice]:
        """Return the qx, qy, qz, qw slice of every hand pose part."""
        return {name: slice(s.start + 3, s.stop)
                for name, s in self.slices().items() if ACTION_PARTS[name].kind == 'pose'}

    def end_effectors(self) -> list[str]:
        """Return the hands this spec commands ("left_hand", "right_hand"), in spec order."""
        return [p[:-len('_pose')] for p in self.parts if ACTION_PARTS[p].kind == 'pose']

    def check_dim(self, got: int, what: str = 'action vector') -> None:
        """Raise ActionSpecMismatchError unless got equals this spec's dimension."""
        if got != self.dim:
            raise ActionSpecMismatchError(self.dim, got, what, self.parts)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able description, as stored inside checkpoints."""
        return {
            'parts': list(self.parts),
            'position_unit': self.position_unit,
            'rotation': self.rotation,
            'dim': self.dim,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionSpec:
        """Rebuild a spec from to_dict output, refusing unknown keys and a stale "dim"."""
        if not isinstance(data, Mapping):
            raise InvalidActionSpecError(
                f'an action spec dict must be a mapping, got {type(data).__name__}')
        known = {'parts', 'position_unit', 'rotation', 'dim'}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidActionSpecError(
                f'unknown action spec key(s) {unknown}; known keys: {sorted(known)}')
        if 'parts' not in data:
            raise InvalidActionSpecError("an action spec dict needs a 'parts' list")
        spec = cls(
            parts=tuple(data['parts']),
            position_unit=data.get('position_unit', 'm'),
            rotation=data.get('rotation', 'quat_xyzw'),
        )
        if 'dim' in data and int(data['dim']) != spec.dim:
            raise ActionSpecMismatchError(spec.dim, int(data['dim']), "stored 'dim'", spec.parts)
        return spec

    @classmethod
    def from_config(cls, value: Any) -> ActionSpec:
        """Build a spec from a config value: None, a list of part names, a string or a dict."""
        if isinstance(value, ActionSpec):
            return value
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls(parts=tuple(p for p in re.split(r'[\s,]+', value) if p))
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, (list, tuple)):
            return cls(parts=tuple(value))
        raise InvalidActionSpecError(
            f'cannot build an action spec from a {type(value).__name__}; '
            f"give a list of part names or a dict with 'parts'")


def _as_float_array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidActionError(f'{what} must be numeric: {error}') from None
    if array.shape != shape:
        raise InvalidActionError(f'{what} must have shape {shape}, got {array.shape}')
    return array


@dataclass
class Pose:
    """A hand pose: position (3,) in metres and orientation (4,) as an xyzw quaternion."""

    position: np.ndarray
    orientation: np.ndarray

    def __post_init__(self) -> None:
        """Copy the inputs into float64 arrays of the right shape."""
        self.position = _as_float_array(self.position, (3,), 'Pose.position')
        self.orientation = _as_float_array(self.orientation, (4,), 'Pose.orientation')

    @classmethod
    def identity(cls) -> Pose:
        """Return the pose at the origin with no rotation."""
        return cls(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    def to_array(self) -> np.ndarray:
        """Return x, y, z, qx, qy, qz, qw as one (7,) array."""
        return np.concatenate([self.position, self.orientation])

    @classmethod
    def from_array(cls, values: Any) -> Pose:
        """Build a pose from a (7,) x, y, z, qx, qy, qz, qw array."""
        array = _as_float_array(values, (7,), 'pose array')
        return cls(array[:3], array[3:])

    def copy(self) -> Pose:
        """Return a pose with its own copies of the arrays."""
        return Pose(self.position.copy(), self.orientation.copy())


@dataclass
class HumanoidAction:
    """One structured command for the robot; parts that are None are not commanded."""

    left_hand_pose: Pose | None = None
    right_hand_pose: Pose | None = None
    left_gripper: float | None = None
    right_gripper: float | None = None
    base_velocity: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        """Check part types and copy values into floats and arrays."""
        for name in ('left_hand_pose', 'right_hand_pose'):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Pose):
                raise InvalidActionError(
                    f'{name} must be a Pose or None, got {type(value).__name__}')
        for name in ('left_gripper', 'right_gripper'):
            value = getattr(self, name)
            if value is not None:
                try:
                    setattr(self, name, float(value))
                except (TypeError, ValueError):
                    raise InvalidActionError(
                        f'{name} must be a number or None, got {value!r}') from None
        if self.base_velocity is not None:
            self.base_velocity = _as_float_array(self.base_velocity, (3,), 'base_velocity')

    def present_parts(self) -> tuple[str, ...]:
        """Return the names of the parts that are set, in registry order."""
        return tuple(p for p in ACTION_PARTS if getattr(self, p) is not None)

    def to_vector(self, spec: ActionSpec) -> np.ndarray:
        """Flatten into the spec's layout; every part the spec lists must be set."""
        vector = np.empty(spec.dim, dtype=np.float64)
        for name, part_slice in spec.slices().items():
            value = getattr(self, name)
            if value is None:
                raise InvalidActionError(
                    f'action has no {name!r}, but the action spec {list(spec.parts)} requires it')
            if isinstance(value, Pose):
                vector[part_slice] = value.to_array()
            else:
                vector[part_slice] = value
        return vector

    @classmethod
    def from_vector(cls, vector: Any, spec: ActionSpec,
                    normalize_quaternions: bool = True) -> HumanoidAction:
        """Read a flat policy output laid out as the spec says, checking it is usable."""
        array = np.asarray(vector, dtype=np.float64)
        if array.ndim != 1:
            raise ActionSpecMismatchError(spec.dim, array.shape, 'action vector', spec.parts)
        spec.check_dim(array.shape[0])
        bad = ~np.isfinite(array)
        if bad.any():
            names = [n for n, b in zip(spec.dimension_names(), bad) if b]
            raise InvalidActionError(f'action vector has non-finite values at {names}')
        values: dict[str, Any] = {}
        for name, part_slice in spec.slices().items():
            block = array[part_slice].copy()
            kind = ACTION_PARTS[name].kind
            if kind == 'pose':
                quaternion = _checked_quaternion(block[3:], name, normalize_quaternions)
                values[name] = Pose(block[:3], quaternion)
            elif kind == 'gripper':
                values[name] = float(block[0])
            else:
                values[name] = block
        return cls(**values)

    def validate(self) -> None:
        """Raise InvalidActionError unless values are finite, quaternions unit, grippers 0..1."""
        for name in ('left_hand_pose', 'right_hand_pose'):
            pose = getattr(self, name)
            if pose is None:
                continue
            if not np.all(np.isfinite(pose.position)):
                raise InvalidActionError(f'{name}.position is not finite: {pose.position}')
            if not np.all(np.isfinite(pose.orientation)):
                raise InvalidActionError(f'{name}.orientation is not finite: {pose.orientation}')
            _checked_quaternion(pose.orientation, name, normalize=False)
        for name in ('left_gripper', 'right_gripper'):
            value = getattr(self, name)
            if value is None:
                continue
            if not np.isfinite(value) or not 0.0 <= value <= 1.0:
                raise InvalidActionError(f'{name} must be a finite value in [0, 1], got {value}')
        if self.base_velocity is not None and not np.all(np.isfinite(self.base_velocity)):
            raise InvalidActionError(f'base_velocity is not finite: {self.base_velocity}')


def _checked_quaternion(quaternion: np.ndarray, part: str, normalize: bool) -> np.ndarray:
    norm = float(np.linalg.norm(quaternion))
    if norm < QUATERNION_MIN_NORM:
        raise InvalidActionError(
            f'{part} quaternion {quaternion} has norm {norm:.3g}; it encodes no rotation')
    if normalize:
        return quaternion / norm
    if abs(norm - 1.0) > UNIT_QUATERNION_TOLERANCE:
        raise InvalidActionError(
            f'{part} quaternion {quaternion} has norm {norm:.6g}, not 1 '
            f'(tolerance {UNIT_QUATERNION_TOLERANCE})')
    return quaternion
