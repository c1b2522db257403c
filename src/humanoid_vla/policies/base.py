"""
What every policy backend takes and returns.

A policy maps one camera frame, an instruction and optionally the robot's proprioceptive state
to a chunk of actions laid out as its ``ActionSpec`` says, in robot units (metres, unit
quaternions, gripper closure in [0, 1]).  Observations are validated before any backend sees
them, so a wrong camera encoding fails loudly instead of producing a plausible-looking action.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from humanoid_vla.actions import ActionSpec
import numpy as np


class ObservationError(ValueError):
    """An observation a policy cannot act on (wrong image encoding, empty instruction...)."""


@dataclass
class Observation:
    """
    One step of input to a policy.

    ``image`` is an RGB ``uint8`` array of shape (H, W, 3), ``instruction`` the task in plain
    language and ``proprio`` an optional 1-D state vector for policies trained with one.
    """

    image: np.ndarray
    instruction: str
    proprio: np.ndarray | None = None


def validate_observation(observation: Observation, proprio_dim: int | None = None) -> None:
    """Raise ObservationError unless ``observation`` is a usable RGB frame and instruction."""
    if not isinstance(observation, Observation):
        raise ObservationError(
            f'expected an Observation, got {type(observation).__name__}')
    image = observation.image
    if not isinstance(image, np.ndarray):
        raise ObservationError(f'image must be a numpy array, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise ObservationError(
            f'image must be uint8 RGB (0..255), got dtype {image.dtype}; convert floats with '
            '(image * 255).round().astype(np.uint8)')
    if image.ndim != 3:
        raise ObservationError(
            f'image must have shape (H, W, 3), got {image.ndim}-D shape {image.shape}')
    if image.shape[2] != 3:
        raise ObservationError(
            f'image must have 3 channels (RGB) in the last axis, got shape {image.shape}')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ObservationError(f'image is empty: shape {image.shape}')
    instruction = observation.instruction
    if not isinstance(instruction, str):
        raise ObservationError(
            f'instruction must be a string, got {type(instruction).__name__}')
    if not instruction.strip():
        raise ObservationError('instruction is empty')
    if observation.proprio is None:
        if proprio_dim:
            raise ObservationError(
                f'this policy needs proprio (a {proprio_dim}-D state vector), got None')
        return
    proprio = np.asarray(observation.proprio)
    if proprio.ndim != 1 or not np.issubdtype(proprio.dtype, np.number):
        raise ObservationError(
            f'proprio must be a 1-D numeric array, got dtype {proprio.dtype} shape '
            f'{proprio.shape}')
    if not np.all(np.isfinite(proprio)):
        raise ObservationError(f'proprio has non-finite values: {proprio}')
    if proprio_dim is not None and proprio.shape[0] != proprio_dim:
        raise ObservationError(
            f'proprio must have {proprio_dim} values, got {proprio.shape[0]}')


class Policy(ABC):
    """
    A backend that turns observations into robot-unit actions.

    ``predict`` returns a float64 array of shape (chunk_size, action_spec.dim): row 0 is the
    action for now, later rows the following control steps.  ``chunk_size`` is 1 for
    single-action policies and for temporally ensembled chunking policies.
    """

    action_spec: ActionSpec
    chunk_size: int = 1
    # Length of the state vector ``predict`` needs in ``Observation.proprio``; None: it takes
    # none. A server reads it to wait for the first joint state before the first step.
    proprio_dim: int | None = None

    def reset(self) -> None:
        """Forget per-episode state (ensembling buffers, counters); call at episode start."""

    @abstractmethod
    def predict(self, observation: Observation) -> np.ndarray:
        """Return the next (chunk, action_spec.dim) actions in robot units."""
