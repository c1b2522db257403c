"""
A deterministic policy for tests and dry runs; it never looks at the image.

It exists so ROS nodes, the safety filter and launch files can be exercised end to end without a
model: hand positions move linearly with the number of calls, orientations, grippers and base
velocity stay constant, and it can inject a NaN action or a slow inference on demand.  Never
use it to drive a real robot.
"""

import time
from typing import Any

from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.policies.base import Observation, Policy, validate_observation
from humanoid_vla.policies.registry import register_policy
import numpy as np

DEFAULT_VELOCITY = (0.01, 0.0, 0.0)


@register_policy('scripted')
class ScriptedPolicy(Policy):
    """
    Return ``start + (call + j) * velocity`` for row j of each chunk (tests and dry runs only).

    ``start`` is a full action vector in robot units (default: hands at the origin with the
    identity quaternion, grippers open, base still).  ``velocity`` is the per-call change: a
    (3,) xyz step applied to every hand, or a full vector that is zero outside hand positions.
    ``nan_at_call`` makes the call with that 0-based index (counted since the last ``reset``)
    return all-NaN actions; ``delay_s`` sleeps in every call to mimic a slow model.
    """

    def __init__(
        self,
        action_spec: Any = None,
        start: Any = None,
        velocity: Any = DEFAULT_VELOCITY,
        chunk_size: int = 1,
        nan_at_call: int | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.action_spec = ActionSpec.from_config(action_spec)
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        if delay_s < 0:
            raise ValueError(f'delay_s must be >= 0, got {delay_s}')
        self.chunk_size = chunk_size
        self.nan_at_call = nan_at_call
        self.delay_s = delay_s
        self.start = self._start_vector(start)
        self.velocity = self._velocity_vector(velocity)
        self.calls = 0

    def _start_vector(self, start: Any) -> np.ndarray:
        if start is None:
            vector = np.zeros(self.action_spec.dim)
            for part_slice in self.action_spec.quaternion_slices().values():
                vector[part_slice.stop - 1] = 1.0  # qw
            return vector
        vector = np.asarray(start, dtype=np.float64)
        if vector.shape != (self.action_spec.dim,):
            raise ActionSpecMismatchError(
                self.action_spec.dim, vector.shape, 'scripted start', self.action_spec.parts)
        return vector.copy()

    def _velocity_vector(self, velocity: Any) -> np.ndarray:
        values = np.asarray(velocity, dtype=np.float64)
        moving = np.zeros(self.action_spec.dim, dtype=bool)
        for part_slice in self.action_spec.position_slices().values():
            moving[part_slice] = True
        if values.shape == (3,):
            vector = np.zeros(self.action_spec.dim)
            for part_slice in self.action_spec.position_slices().values():
                vector[part_slice] = values
            return vector
        if values.shape != (self.action_spec.dim,):
            raise ActionSpecMismatchError(
                self.action_spec.dim, values.shape, 'scripted velocity', self.action_spec.parts)
        if np.any(values[~moving] != 0):
            names = [n for n, m, v in zip(self.action_spec.dimension_names(), moving, values)
                     if not m and v != 0]
            raise ValueError(f'scripted velocity may only move hand positions, got {names}')
        return values.copy()

    def reset(self) -> None:
        """Restart the script from ``start``."""
        self.calls = 0

    def predict(self, observation: Observation) -> np.ndarray:
        """Return the next (chunk_size, dim) scripted actions."""
        validate_observation(observation)
        if self.delay_s:
            time.sleep(self.delay_s)
        call = self.calls
        self.calls += 1
        steps = np.arange(call, call + self.chunk_size, dtype=np.float64)[:, None]
        actions = self.start[None, :] + steps * self.velocity[None, :]
        if self.nan_at_call is not None and call == self.nan_at_call:
            actions[:] = np.nan
        return actions


__all__ = ['ScriptedPolicy']
