"""
Checkpoints of the custom VLA: one directory holding everything needed to act.

Layout::

    config.json, model.safetensors   # CustomVLAModel.save_pretrained
    action_stats.json                # NormalizationStats: the model speaks normalised units
    action_spec.json                 # ActionSpec.to_dict: what each output dimension means
    training_args.json               # optional, free-form (how the model was trained)

Saving the statistics and the spec next to the weights is what keeps a policy from ever being
run with the wrong un-normalisation or read with the wrong action layout.
"""

from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Any

from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.models import CustomVLAConfig, CustomVLAModel
from humanoid_vla.normalization import NormalizationStats, STATS_FILENAME
import numpy as np
import torch
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

CONFIG_FILENAME = 'config.json'
SPEC_FILENAME = 'action_spec.json'
TRAINING_ARGS_FILENAME = 'training_args.json'
WEIGHTS_FILENAMES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)


class CheckpointError(ValueError):
    """A checkpoint directory is unusable: unreadable, inconsistent or of the wrong kind."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint directory, or a file it must hold, does not exist."""


@dataclass
class LoadedCheckpoint:
    """Everything read back from a checkpoint directory."""

    model: CustomVLAModel
    stats: NormalizationStats
    spec: ActionSpec
    extra: dict[str, Any] | None = field(default=None)


def save_checkpoint(
    directory: str | Path,
    model: CustomVLAModel,
    stats: NormalizationStats,
    spec: ActionSpec,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write model, statistics, action spec and optional training arguments to ``directory``."""
    spec.check_dim(model.config.action_dim, 'model action_dim')
    spec.check_dim(stats.dim, 'normalisation stats')
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    stats.save(target / STATS_FILENAME)
    _write_json(target / SPEC_FILENAME, spec.to_dict())
    if extra is not None:
        _write_json(target / TRAINING_ARGS_FILENAME, extra)
    return target


def load_checkpoint(directory: str | Path, device: str | torch.device = 'cpu') -> LoadedCheckpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; the model comes back in eval mode."""
    source = Path(directory)
    if not source.is_dir():
        raise CheckpointNotFoundError(f'checkpoint directory {source} does not exist')
    missing = [name for name in (CONFIG_FILENAME, STATS_FILENAME, SPEC_FILENAME)
               if not (source / name).is_file()]
    if not any((source / name).is_file() for name in WEIGHTS_FILENAMES):
        missing.append(f"model weights ({' or '.join(WEIGHTS_FILENAMES)})")
    if missing:
        raise CheckpointNotFoundError(
            f"checkpoint {source} is missing {', '.join(missing)}; it should hold the files "
            'written by humanoid_vla.checkpoint.save_checkpoint'
        )
    model_type = _read_json(source / CONFIG_FILENAME).get('model_type')
    if model_type != CustomVLAModel.config_class.model_type:
        raise CheckpointError(
            f'{source / CONFIG_FILENAME} describes a {model_type!r} model, expected '
            f'{CustomVLAModel.config_class.model_type!r}'
        )
    try:
        stats = NormalizationStats.from_dict(_read_json(source / STATS_FILENAME))
        spec = ActionSpec.from_dict(_read_json(source / SPEC_FILENAME))
    except ActionSpecMismatchError:
        raise
    except ValueError as err:
        raise CheckpointError(f'checkpoint {source} holds unusable metadata: {err}') from err
    extra = None
    if (source / TRAINING_ARGS_FILENAME).is_file():
        extra = _read_json(source / TRAINING_ARGS_FILENAME)
    model = CustomVLAModel.from_pretrained(source)
    spec.check_dim(model.config.action_dim, f'model action_dim in {source / CONFIG_FILENAME}')
    spec.check_dim(stats.dim, f'normalisation stats in {source / STATS_FILENAME}')
    model.to(device).eval()
    return LoadedCheckpoint(model=model, stats=stats, spec=spec, extra=extra)


def save_untrained_checkpoint(directory: str | Path, spec: ActionSpec,
                              config: CustomVLAConfig | None = None, seed: int = 0) -> Path:
    """
    Save a randomly initialised model with statistics of a plausible action range.

    For tests and benchmarks that need a real checkpoint of the right shape (the forward pass and
    every loading step are real; the actions mean nothing). Hand positions span a box in front of
    the robot (the simulated G1's reach, pelvis frame), orientations stay at the identity,
    grippers span [0, 1].
    """
    torch.manual_seed(seed)
    model = CustomVLAModel(config or CustomVLAConfig(action_dim=spec.dim))
    rng = np.random.default_rng(seed)
    actions = np.zeros((256, spec.dim))
    for part_slice in spec.position_slices().values():
        actions[:, part_slice] = rng.uniform([0.2, -0.3, -0.05], [0.45, 0.05, 0.1], size=(256, 3))
    for part_slice in spec.quaternion_slices().values():
        actions[:, part_slice.stop - 1] = 1.0
    actions[:, spec.gripper_mask()] = rng.uniform(0.0, 1.0, size=(256, spec.gripper_mask().sum()))
    stats = NormalizationStats.from_actions(actions, mask=~spec.gripper_mask())
    return save_checkpoint(directory, model, stats, spec)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + '\n')


def _read_json(path: Path) -> Any:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f'{path} is not valid JSON: {err}') from err
    if not isinstance(data, dict):
        raise CheckpointError(f'{path} must hold a JSON object, got {type(data).__name__}')
    return data
