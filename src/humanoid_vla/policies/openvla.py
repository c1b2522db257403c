r"""
OpenVLA (https://openvla.github.io) behind the Policy interface.

Loading follows the OpenVLA README: ``AutoProcessor`` and the Vision2Seq model class with
``trust_remote_code=True``, bf16 on CUDA and float32 on CPU, optional 8/4-bit bitsandbytes
quantisation on CUDA.  Each call formats the prompt
``In: What action should the robot take to {instruction}?\nOut:``, runs
``predict_action(**inputs, unnorm_key=..., do_sample=False)`` and returns a (1, dim) float64
action un-normalised by the model's own ``norm_stats`` entry.

transformers 5 removed ``AutoModelForVision2Seq``; OpenVLA's ``config.json`` still maps its
class under that name, so the remote class is then resolved from ``auto_map`` directly
(``AutoModelForImageTextToText`` for checkpoints that map that name instead).  PIL is used for
the frame when installed (the Prismatic processor expects a PIL image); otherwise the uint8 array
is passed as is.

Tested here (``src/tests/test_openvla_policy.py``, CPU, offline): the whole code path up to and
including the ``predict_action`` call, with a tiny ``trust_remote_code`` model and processor
written to a temporary directory: remote class resolution, the prompt string, float32 on CPU,
``unnorm_key`` resolution, the action dimension check and the bitsandbytes-without-GPU error.
Not tested here (needs the ~15 GB hub weights and a GPU): loading ``openvla/openvla-7b`` itself,
bf16 inference and quantised loading.  The released checkpoint pins transformers 4.40 and emits
7-D end-effector deltas (xyz, roll-pitch-yaw, gripper); that layout matches no ActionSpec of this
stack, so it must be fine-tuned on this robot's action layout (and statistics) before use.
"""

import importlib.util
from pathlib import Path
from typing import Any, Mapping

from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.policies.base import Observation, Policy, validate_observation
from humanoid_vla.policies.registry import register_policy
import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoProcessor
from transformers.dynamic_module_utils import get_class_from_dynamic_module

OPENVLA_PROMPT = 'In: What action should the robot take to {instruction}?\nOut:'
DEFAULT_MODEL = 'openvla/openvla-7b'
VISION2SEQ_AUTO_MAP_KEYS = ('AutoModelForVision2Seq', 'AutoModelForImageTextToText')


class OpenVLAConfigError(ValueError):
    """OpenVLA cannot be loaded as asked (quantisation without CUDA, unknown unnorm_key...)."""


def openvla_prompt(instruction: str) -> str:
    """Format an instruction the way OpenVLA was trained to read it."""
    return OPENVLA_PROMPT.format(instruction=instruction.strip())


def check_quantization(load_in_8bit: bool, load_in_4bit: bool, device: torch.device) -> Any:
    """Return a ``BitsAndBytesConfig`` (or None), refusing setups bitsandbytes cannot serve."""
    if not (load_in_8bit or load_in_4bit):
        return None
    if load_in_8bit and load_in_4bit:
        raise OpenVLAConfigError('choose one of load_in_8bit and load_in_4bit, not both')
    mode = 'load_in_8bit' if load_in_8bit else 'load_in_4bit'
    problems = []
    if importlib.util.find_spec('bitsandbytes') is None:
        problems.append('the bitsandbytes package is not installed')
    if device.type != 'cuda' or not torch.cuda.is_available():
        problems.append(f'it needs a CUDA device (device is {device}, '
                        f'cuda available: {torch.cuda.is_available()})')
    if problems:
        raise OpenVLAConfigError(
            f"{mode}=True cannot be used: {'; '.join(problems)}. Load without quantisation "
            'instead (float32 on CPU, bf16 on CUDA)')
    return transformers.BitsAndBytesConfig(load_in_8bit=load_in_8bit, load_in_4bit=load_in_4bit)


def resolve_model_class(model_name_or_path: str | Path) -> Any:
    """Return the class to load an OpenVLA-style checkpoint with, on transformers 4 or 5."""
    auto_class = getattr(transformers, 'AutoModelForVision2Seq', None)
    if auto_class is not None:
        return auto_class
    config = AutoConfig.from_pretrained(str(model_name_or_path), trust_remote_code=True)
    auto_map = getattr(config, 'auto_map', None) or {}
    for key in VISION2SEQ_AUTO_MAP_KEYS:
        if key in auto_map:
            return get_class_from_dynamic_module(auto_map[key], str(model_name_or_path))
    return transformers.AutoModelForImageTextToText


def resolve_unnorm_key(norm_stats: Mapping[str, Any] | None, unnorm_key: str | None) -> str:
    """Pick the dataset statistics to un-normalise with; None means the only one there is."""
    keys = sorted(norm_stats or {})
    if unnorm_key is None:
        if len(keys) == 1:
            return keys[0]
        if not keys:
            raise OpenVLAConfigError('the model has no norm_stats to un-normalise actions with')
        raise OpenVLAConfigError(
            f'the model has statistics for several datasets; pass unnorm_key, one of {keys}')
    if keys and unnorm_key not in keys:
        raise OpenVLAConfigError(f'unknown unnorm_key {unnorm_key!r}; available keys: {keys}')
    return unnorm_key


@register_policy('openvla')
class OpenVLAPolicy(Policy):
    """OpenVLA (or a fine-tune sharing its interface) returning (1, dim) robot-unit actions."""

    def __init__(
        self,
        model_name_or_path: str | Path = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        load_in_8bit: bool = False,
        load_in_4bit: bool = False,
        unnorm_key: str | None = None,
        action_spec: Any = None,
    ) -> None:
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        self.dtype = torch.bfloat16 if self.device.type == 'cuda' else torch.float32
        self.action_spec = ActionSpec.from_config(action_spec)
        quantization = check_quantization(load_in_8bit, load_in_4bit, self.device)
        path = str(model_name_or_path)
        self.processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
        dtype_key = 'dtype' if int(transformers.__version__.split('.')[0]) >= 5 else 'torch_dtype'
        kwargs: dict[str, Any] = {
            dtype_key: self.dtype,
            'low_cpu_mem_usage': True,
            'trust_remote_code': True,
        }
        if quantization is not None:
            kwargs['quantization_config'] = quantization
            kwargs['device_map'] = str(self.device)
        self.model = resolve_model_class(path).from_pretrained(path, **kwargs)
        if quantization is None:
            self.model.to(self.device)
        self.model.eval()
        self.unnorm_key = resolve_unnorm_key(self._norm_stats(), unnorm_key)
        model_dim = self._model_action_dim()
        if model_dim is not None:
            self.action_spec.check_dim(model_dim, f'OpenVLA actions for {self.unnorm_key!r}')

    def _norm_stats(self) -> Mapping[str, Any] | None:
        stats = getattr(self.model, 'norm_stats', None)
        if stats is None:
            stats = getattr(self.model.config, 'norm_stats', None)
        return stats

    def _model_action_dim(self) -> int | None:
        entry = (self._norm_stats() or {}).get(self.unnorm_key, {})
        low = entry.get('action', {}).get('q01') if isinstance(entry, Mapping) else None
        return None if low is None else len(low)

    def _processor_image(self, image: np.ndarray) -> Any:
        try:
            from PIL import Image
        except ImportError:
            return image
        return Image.fromarray(image)

    def predict(self, observation: Observation) -> np.ndarray:
        """Return a (1, dim) float64 action in robot units."""
        validate_observation(observation)
        prompt = openvla_prompt(observation.instruction)
        inputs = self.processor(prompt, self._processor_image(observation.image))
        inputs = inputs.to(self.device, dtype=self.dtype)
        with torch.inference_mode():
            action = self.model.predict_action(
                **inputs, unnorm_key=self.unnorm_key, do_sample=False)
        if isinstance(action, torch.Tensor):
            action = action.detach().float().cpu().numpy()
        action = np.asarray(action, dtype=np.float64)
        if action.size != self.action_spec.dim:
            raise ActionSpecMismatchError(
                self.action_spec.dim, action.shape, 'OpenVLA predict_action output',
                self.action_spec.parts)
        return action.reshape(1, self.action_spec.dim)
