"""
The settings of a training run: one dataclass, read from YAML, checked as a whole.

``config/train_custom_vla.yaml`` documents every field.  ``--set key=value`` overrides are
applied to the YAML data before the dataclass is built (values are parsed as YAML, so
``--set max_steps=10`` gives an int and ``--set data=[a.hdf5,b.hdf5]`` a list;
``--set model.hidden_size=64`` reaches into the model fields).  Everything is checked in
``__post_init__``, data files included, so a typo fails at once instead of after the data loaded.

Paths: ``data`` and ``output_dir`` are taken relative to the working directory, like any
command-line argument; a ``model`` path written in a YAML file is relative to that file, so a
training config and its model config can travel together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from humanoid_vla.actions import ActionSpec, DEFAULT_PARTS
from humanoid_vla.camera_projection import CameraCalibrationError, PinholeCamera
from humanoid_vla.models import CustomVLAConfig
from humanoid_vla.paraphrase import ParaphraseTable, ParaphraseTableError
from humanoid_vla.training.precision import PRECISIONS
import yaml

DEVICES = ('auto', 'cpu', 'cuda')
# Model fields the training config decides: a model config may repeat them, not contradict them.
DERIVED_MODEL_FIELDS = ('action_dim', 'chunk_size', 'use_proprio', 'proprio_dim')
# Minimum of each integer field (None: any integer).
_INT_FIELDS: dict[str, int | None] = {
    'chunk_size': 1,
    'action_offset': 0,
    'batch_size': 1,
    'num_workers': 0,
    'max_steps': 1,
    'warmup_steps': 0,
    'eval_every': 0,
    'checkpoint_every': 0,
    'keep_last_checkpoints': 0,
    'seed': None,
    'log_every': 1,
}
_FLOAT_FIELDS = {'learning_rate': False, 'weight_decay': True, 'grad_clip': True}  # zero allowed?
_BOOL_FIELDS = ('augment', 'use_instruction', 'successful_only', 'grounding_upcoming',
                'cache_frames')


class TrainingConfigError(ValueError):
    """A training configuration is unusable: unknown key, wrong type or value out of range."""


def model_field_names() -> list[str]:
    """Return the fields a model config may set (those of :class:`CustomVLAConfig` itself)."""
    return list(CustomVLAConfig.__annotations__)


def load_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping, with errors that name the file."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f'{what} {source} does not exist')
    try:
        data = yaml.safe_load(source.read_text())
    except yaml.YAMLError as err:
        raise TrainingConfigError(f'{what} {source} is not valid YAML: {err}') from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TrainingConfigError(
            f'{what} {source} must hold a mapping of keys to values, got {type(data).__name__}')
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return ``data`` with ``key=value`` overrides applied (``model.<field>=...`` too)."""
    result = dict(data)
    for override in overrides:
        key, sep, text = override.partition('=')
        key = key.strip()
        if not sep or not key:
            raise TrainingConfigError(f'override {override!r} must look like key=value')
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise TrainingConfigError(f'cannot parse the value of override {override!r}: {err}') \
                from err
        if key.startswith('model.'):
            model = result.get('model') or {}
            if isinstance(model, (str, Path)):
                model = load_yaml_mapping(model, 'model config')
            if not isinstance(model, dict):
                raise TrainingConfigError(f'cannot apply {override!r}: model is not a mapping')
            result['model'] = {**model, key[len('model.'):]: value}
        else:
            result[key] = value
    return result


@dataclass
class TrainingConfig:
    """
    Everything that defines a training run of the custom VLA (see the module docstring).

    ``model`` holds :class:`CustomVLAConfig` fields, or the path of a YAML file of them;
    ``action_dim``, ``chunk_size`` and the proprio fields come from this config.  ``image_size``
    None means the model's.  ``eval_every`` / ``checkpoint_every`` 0 turn validation / periodic
    checkpoints off, ``keep_last_checkpoints`` 0 keeps all, ``grad_clip`` 0 does not clip.
    ``use_instruction`` False replaces every instruction by an empty string: the language-blind
    baseline.  ``successful_only`` trains and validates on the episodes recorded as successes.
    ``subgoal_part`` names the action part (a gripper) whose command changes end the segments
    the model's subgoal head learns to predict; it is required exactly when the model's
    ``subgoal_loss_weight`` is > 0.  ``grounding_camera`` is the calibration of the camera the
    images come from (``position`` and ``quaternion_xyzw`` in the actions' base frame,
    ``fovy_deg``); it maps each subgoal's position to the image position the model's grounding
    maps learn, and is required exactly when the model has ``grounding_maps``.
    ``grounding_upcoming`` True trains, at every frame, the map of each segment still ahead
    (map 1 learns where a grasped object will go from the first frame on), not only the
    frame's own.  ``grounding_peer_groups`` (e.g. ``[colour, shape]``) trains the model's last
    maps, one per group, to light up every object of that group in the episode attribute
    ``grounding_peers`` (written by ``vla-sim-annotate-peers``: the objects sharing the named
    one's colour, its shape) on the frames before the first gripper change.
    ``cache_frames`` keeps the resized frames in memory as they are read (see
    :class:`EpisodeDataset`; about a fifth of a step saved on a 2-core CPU); it needs
    ``augment`` False.  ``instruction_paraphrases`` is the path of a
    :class:`~humanoid_vla.paraphrase.ParaphraseTable` YAML file (relative to the training
    config's file, like ``model``): training instructions are rewritten into other phrasings
    of the same task, validation keeps the recorded ones; no effect without instructions.
    """

    data: list[str]
    output_dir: str
    model: dict[str, Any] | str = field(default_factory=dict)
    action_parts: list[str] = field(default_factory=lambda: list(DEFAULT_PARTS))
    image_key: str | None = None
    proprio_key: str | None = None
    chunk_size: int = 1
    action_offset: int = 0
    image_size: int | None = None
    augment: bool = True
    batch_size: int = 32
    num_workers: int = 4
    max_steps: int = 20000
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 500
    grad_clip: float = 1.0
    eval_every: int = 1000
    checkpoint_every: int = 2000
    keep_last_checkpoints: int = 3
    seed: int = 0
    device: str = 'auto'
    precision: str = 'fp32'
    log_every: int = 50
    use_instruction: bool = True
    successful_only: bool = False
    subgoal_part: str | None = None
    grounding_camera: dict[str, Any] | None = None
    grounding_upcoming: bool = False
    grounding_peer_groups: list[str] = field(default_factory=list)
    cache_frames: bool = False
    instruction_paraphrases: str | None = None

    def __post_init__(self) -> None:
        """Check every field, the data files and the model config; raise on the first problem."""
        if isinstance(self.data, (str, Path)):
            self.data = [self.data]
        if not isinstance(self.data, (list, tuple)) or not self.data:
            raise TrainingConfigError('data must be a non-empty list of HDF5 index files')
        self.data = [str(p) for p in self.data]
        missing = [p for p in self.data if not Path(p).expanduser().is_file()]
        if missing:
            raise FileNotFoundError(f"data file(s) not found: {', '.join(missing)}")
        if not isinstance(self.output_dir, (str, Path)) or not str(self.output_dir):
            raise TrainingConfigError('output_dir must be a directory path')
        self.output_dir = str(self.output_dir)
        for name, minimum in _INT_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TrainingConfigError(f'{name} must be an integer, got {value!r}')
            if minimum is not None and value < minimum:
                raise TrainingConfigError(f'{name} must be >= {minimum}, got {value}')
        for name, zero_allowed in _FLOAT_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TrainingConfigError(f'{name} must be a number, got {value!r}')
            setattr(self, name, float(value))
            if value < 0 or (value == 0 and not zero_allowed):
                bound = '>= 0' if zero_allowed else '> 0'
                raise TrainingConfigError(f'{name} must be {bound}, got {value}')
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise TrainingConfigError(f'{name} must be true or false, got '
                                          f'{getattr(self, name)!r}')
        if self.cache_frames and self.augment:
            raise TrainingConfigError('cache_frames needs augment: false (the cache holds '
                                      'resized frames; augmentation crops the full frame)')
        if self.instruction_paraphrases is not None:
            self.paraphrase_table()
        if self.image_size is not None and (
                isinstance(self.image_size, bool) or not isinstance(self.image_size, int)
                or self.image_size < 1):
            raise TrainingConfigError(
                f'image_size must be a positive integer or null, got {self.image_size!r}')
        for name in ('image_key', 'proprio_key'):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise TrainingConfigError(f'{name} must be an observation key or null')
        if self.device not in DEVICES:
            raise TrainingConfigError(f'device must be one of {DEVICES}, got {self.device!r}')
        if self.precision not in PRECISIONS:
            raise TrainingConfigError(
                f'precision must be one of {PRECISIONS}, got {self.precision!r}')
        try:
            spec = ActionSpec.from_config(self.action_parts)
        except ValueError as err:
            raise TrainingConfigError(f'action_parts: {err}') from err
        self.action_parts = list(spec.parts)
        if isinstance(self.model, Path):
            self.model = str(self.model)
        if not isinstance(self.model, (dict, str)):
            raise TrainingConfigError(
                'model must be a mapping of CustomVLAConfig fields or the path of a YAML file')
        model_config = self.build_model_config()
        if (self.subgoal_part is not None) != (model_config.subgoal_loss_weight > 0):
            raise TrainingConfigError(
                "subgoal_part and the model's subgoal_loss_weight > 0 go together (the part "
                'whose changes end the subgoal segments); set both or neither')
        if self.subgoal_part is not None and self.subgoal_part not in spec.parts:
            raise TrainingConfigError(
                f'subgoal_part {self.subgoal_part!r} is not one of the action_parts {spec.parts}')
        if (self.grounding_camera is not None) != (model_config.grounding_maps > 0):
            raise TrainingConfigError(
                "grounding_camera and the model's grounding_maps > 0 go together (the camera "
                'maps each subgoal to the image position the maps learn); set both or neither')
        groups = self.grounding_peer_groups
        if (not isinstance(groups, (list, tuple)) or len(set(groups)) != len(groups)
                or not all(isinstance(g, str) and g for g in groups)):
            raise TrainingConfigError(f'grounding_peer_groups must be a list of distinct '
                                      f'group names, got {groups!r}')
        self.grounding_peer_groups = list(groups)
        if groups and model_config.grounding_maps <= len(groups):
            raise TrainingConfigError(
                f'grounding_peer_groups take the last {len(groups)} grounding maps and the '
                f'subgoals need at least one more: grounding_maps is '
                f'{model_config.grounding_maps}')
        self._check_pixel_maps(model_config)
        if self.grounding_upcoming and self.grounding_camera is None:
            raise TrainingConfigError(
                'grounding_upcoming needs grounding_maps and grounding_camera')
        if self.grounding_camera is not None:
            if self.subgoal_part is None:
                raise TrainingConfigError(
                    'grounding_maps learn where the subgoals are: they need subgoal_part')
            if not spec.position_slices():
                raise TrainingConfigError(
                    f'grounding_maps need a pose among the action_parts, got {spec.parts}')
            starts = [part.start for part in spec.position_slices().values()]
            if model_config.map_anchors and 0 not in starts:
                raise TrainingConfigError(
                    'map_anchors move the first two action dimensions: the first of the '
                    f'action_parts must be a pose, got {spec.parts}')
            if isinstance(self.grounding_camera, Mapping) and 'crop' in self.grounding_camera:
                raise TrainingConfigError(
                    'grounding_camera is the camera calibration; the window the model sees is '
                    'model.image_crop (the grounding targets follow it)')
            try:
                self.camera
            except CameraCalibrationError as err:
                raise TrainingConfigError(f'grounding_camera: {err}') from err

    def _check_pixel_maps(self, model_config: CustomVLAConfig) -> None:
        """Check that the maps with a colour or shape path of their own learn that group."""
        maps, groups = model_config.grounding_maps, self.grounding_peer_groups
        first = maps - model_config.grounding_and_maps
        pixel_end = first + model_config.grounding_pixel_maps
        shape_end = pixel_end + model_config.grounding_shape_maps
        for index in range(first, shape_end):
            wanted, option, sees = (('colour', 'grounding_pixel_maps', 'only pixel colours')
                                    if index < pixel_end else
                                    ('shape', 'grounding_shape_maps', 'recoloured images'))
            group = index - (maps - len(groups))
            if group < 0 or groups[group] != wanted:
                raise TrainingConfigError(
                    f'grounding map {index} sees {sees} ({option}): '
                    f'grounding_peer_groups must train it on {wanted}, got {groups!r}')

    def paraphrase_table(self) -> ParaphraseTable | None:
        """Return the instruction paraphrases of training (None when not configured)."""
        if self.instruction_paraphrases is None:
            return None
        path = self.instruction_paraphrases
        if not isinstance(path, (str, Path)) or not str(path):
            raise TrainingConfigError(
                f'instruction_paraphrases must be a YAML file path or null, got {path!r}')
        if not Path(path).expanduser().is_file():
            raise FileNotFoundError(f'instruction_paraphrases file not found: {path}')
        try:
            return ParaphraseTable.from_yaml(Path(path).expanduser())
        except (ParaphraseTableError, yaml.YAMLError) as err:
            raise TrainingConfigError(f'instruction_paraphrases {path}: {err}') from err

    @property
    def camera(self) -> PinholeCamera | None:
        """
        Return the grounding camera's calibration, or None without grounding maps.

        With the model's ``image_crop`` it projects into that window (the model's image).
        """
        if self.grounding_camera is None:
            return None
        return PinholeCamera.from_mapping(self.model_camera_mapping())

    def model_camera_mapping(self) -> Any:
        """Return ``grounding_camera`` with the model's ``image_crop`` added (None without)."""
        if self.grounding_camera is None:
            return None
        if not isinstance(self.grounding_camera, Mapping):
            return self.grounding_camera  # PinholeCamera.from_mapping says what is wrong
        mapping = dict(self.grounding_camera)
        crop = self.model_fields().get('image_crop')
        if crop is not None:
            mapping['crop'] = list(crop)
        return mapping

    @property
    def subgoal_position_slice(self) -> slice:
        """Return where the subgoal hand's position (x, y, z) sits in an action."""
        positions = self.action_spec.position_slices()
        same_side = f"{str(self.subgoal_part).removesuffix('_gripper')}_hand_pose"
        return positions.get(same_side, next(iter(positions.values())))

    @property
    def subgoal_dim(self) -> int | None:
        """Index of the first action dimension of ``subgoal_part`` (None without subgoals)."""
        if self.subgoal_part is None:
            return None
        return self.action_spec.slices()[self.subgoal_part].start

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingConfig:
        """Build a config from a mapping, naming unknown and missing keys."""
        if not isinstance(data, Mapping):
            raise TrainingConfigError(
                f'a training config must be a mapping, got {type(data).__name__}')
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise TrainingConfigError(
                f"unknown training config key(s) {unknown}; known keys: {', '.join(known)}")
        missing = [name for name in ('data', 'output_dir') if name not in data]
        if missing:
            raise TrainingConfigError(f'the training config needs {" and ".join(missing)}')
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> TrainingConfig:
        """Read a YAML file, apply ``key=value`` overrides, then build and check the config."""
        source = Path(path).expanduser()
        data = load_yaml_mapping(source, 'training config')
        for key in ('model', 'instruction_paraphrases'):  # files that travel with the config
            value = data.get(key)
            if isinstance(value, str) and not Path(value).expanduser().is_absolute():
                data[key] = str((source.parent / value).resolve())
        return cls.from_dict(apply_overrides(data, overrides))

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain YAML/JSON-able values."""
        return asdict(self)

    def save_yaml(self, path: str | Path) -> Path:
        """Write the config as YAML (the run's record; ``from_yaml`` reads it back)."""
        target = Path(path)
        target.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return target

    # --- derived values ---------------------------------------------------------------------

    @property
    def action_spec(self) -> ActionSpec:
        """Return the action layout the model is trained for."""
        return ActionSpec.from_config(self.action_parts)

    def model_fields(self) -> dict[str, Any]:
        """Return the model fields, read from the model YAML file when ``model`` is a path."""
        if isinstance(self.model, str):
            fields_ = load_yaml_mapping(self.model, 'model config')
        else:
            fields_ = dict(self.model)
        unknown = sorted(set(fields_) - set(model_field_names()))
        if unknown:
            raise TrainingConfigError(
                f'unknown model config key(s) {unknown}; known keys: '
                f"{', '.join(model_field_names())}")
        return fields_

    def build_model_config(self, proprio_dim: int | None = None) -> CustomVLAConfig:
        """
        Build the model config: the model fields plus what this config decides.

        ``proprio_dim`` is the length of the proprio observation, known once the data is read;
        None (when only checking the config) skips the checks that need it.
        """
        fields_ = self.model_fields()
        use_proprio = self.proprio_key is not None
        derived = {
            'action_dim': self.action_spec.dim,
            'chunk_size': self.chunk_size,
            'use_proprio': use_proprio,
            'proprio_dim': (proprio_dim or 1) if use_proprio else 0,
        }
        for name in DERIVED_MODEL_FIELDS:
            if name == 'proprio_dim' and use_proprio and proprio_dim is None:
                continue
            if name in fields_ and fields_[name] != derived[name]:
                raise TrainingConfigError(
                    f'model field {name}={fields_[name]!r} contradicts the training config '
                    f'({derived[name]!r}); set it through action_parts, chunk_size or proprio_key')
        if self.image_size is not None:
            if fields_.get('image_size', self.image_size) != self.image_size:
                raise TrainingConfigError(
                    f"image_size {self.image_size} contradicts the model's image_size "
                    f"{fields_['image_size']}; set one of them")
            fields_['image_size'] = self.image_size
        fields_.update(derived)
        if fields_.get('map_anchors') and fields_.get('map_anchor_camera') is None:
            # The anchors go through the camera the maps are trained against.
            fields_['map_anchor_camera'] = self.model_camera_mapping()
        try:
            return CustomVLAConfig(**fields_)
        except (TypeError, ValueError) as err:
            raise TrainingConfigError(f'model config: {err}') from err
