"""
Tests of the OpenVLA backend with a tiny stand-in model; no hub access, a GPU only if present.

A temporary directory receives a ``trust_remote_code`` package shaped like openvla/openvla-7b: a
``config.json`` whose ``auto_map`` names ``AutoConfig`` and ``AutoModelForVision2Seq`` classes in
local ``configuration_*.py`` / ``modeling_*.py`` files, ``norm_stats`` in the config, a
``predict_action(input_ids, pixel_values, unnorm_key, ...)`` that decodes action-token bins as
OpenVLA does, and a processor that ``AutoProcessor`` loads through ``processor_config.json``
(the MiniLM tokenizer of the gt package, saved next to it).  The real loading and prediction code
of ``OpenVLAPolicy`` runs unchanged on it.
"""

import importlib.util
import json
from pathlib import Path
import textwrap

import huggingface_hub.constants
from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.models.language import load_tokenizer
from humanoid_vla.policies import make_policy, Observation
from humanoid_vla.policies.openvla import (
    OpenVLAConfigError,
    OpenVLAPolicy,
    resolve_model_class,
    resolve_unnorm_key,
)
import numpy as np
import pytest
from safetensors.torch import save_file
import torch

N_BINS = 256
VOCAB = 30522
SPEC = ActionSpec()  # 8-D: right hand pose + gripper
Q01 = [-0.1, -0.2, -0.3, -1.0, -1.0, -1.0, -1.0, 0.0]
Q99 = [0.1, 0.2, 0.3, 1.0, 1.0, 1.0, 1.0, 1.0]
MASK = [True] * 7 + [False]

CONFIGURATION = """
from transformers import PretrainedConfig


class TinyOpenVLAConfig(PretrainedConfig):
    model_type = "tiny_openvla"

    def __init__(self, norm_stats=None, n_action_bins=256, text_vocab_size=30522, **kwargs):
        self.norm_stats = norm_stats
        self.n_action_bins = n_action_bins
        self.text_vocab_size = text_vocab_size
        super().__init__(**kwargs)
"""

MODELING = """
import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_tinyopenvla import TinyOpenVLAConfig


class TinyOpenVLAForActionPrediction(PreTrainedModel):
    config_class = TinyOpenVLAConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = nn.Linear(3, 1)
        self.norm_stats = config.norm_stats
        bins = np.linspace(-1, 1, config.n_action_bins)
        self.bin_centers = (bins[:-1] + bins[1:]) / 2.0
        self.calls = []
        self.post_init()

    def predict_action(self, input_ids=None, pixel_values=None, unnorm_key=None, **kwargs):
        self.calls.append(dict(input_ids=input_ids, pixel_values=pixel_values,
                               unnorm_key=unnorm_key, kwargs=kwargs))
        self.proj(pixel_values.mean(dim=(2, 3)))  # the weights must accept the input dtype
        stats = self.norm_stats[unnorm_key]["action"]
        dim = len(stats["q01"])
        # "generated" action tokens: OpenVLA uses the last n_action_bins ids of the vocabulary
        token_ids = self.config.text_vocab_size - 1 - (np.arange(dim) * 37) % 255
        discretized = self.config.text_vocab_size - token_ids
        discretized = np.clip(discretized - 1, a_min=0, a_max=self.bin_centers.shape[0] - 1)
        normalized = self.bin_centers[discretized]
        mask = np.array(stats.get("mask", np.ones(dim, dtype=bool)))
        high, low = np.array(stats["q99"]), np.array(stats["q01"])
        return np.where(mask, 0.5 * (normalized + 1) * (high - low) + low, normalized)
"""

PROCESSING = """
import numpy as np
import torch
from transformers import AutoTokenizer, BatchFeature


class TinyOpenVLAProcessor:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.prompts = []

    @classmethod
    def register_for_auto_class(cls, auto_class="AutoProcessor"):
        return None

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        return cls(AutoTokenizer.from_pretrained(path))

    def __call__(self, text, images, **kwargs):
        self.prompts.append(text)
        image = torch.from_numpy(np.asarray(images, dtype=np.float64) / 255.0)
        pixels = torch.nn.functional.interpolate(image.permute(2, 0, 1)[None], size=(16, 16))
        tokens = self.tokenizer(text, return_tensors="pt")
        return BatchFeature({"input_ids": tokens["input_ids"],
                             "attention_mask": tokens["attention_mask"],
                             "pixel_values": pixels})  # float64: the policy must cast it
"""


def expected_action():
    token_ids = VOCAB - 1 - (np.arange(SPEC.dim) * 37) % 255
    bins = np.linspace(-1, 1, N_BINS)
    centers = (bins[:-1] + bins[1:]) / 2.0
    normalized = centers[np.clip(VOCAB - token_ids - 1, 0, centers.shape[0] - 1)]
    low, high = np.array(Q01), np.array(Q99)
    return np.where(MASK, 0.5 * (normalized + 1) * (high - low) + low, normalized)


def write_tiny_openvla(directory: Path, dataset_keys) -> Path:
    directory.mkdir(parents=True)
    (directory / 'configuration_tinyopenvla.py').write_text(textwrap.dedent(CONFIGURATION))
    (directory / 'modeling_tinyopenvla.py').write_text(textwrap.dedent(MODELING))
    (directory / 'processing_tinyopenvla.py').write_text(textwrap.dedent(PROCESSING))
    stats = {key: {'action': {'q01': Q01, 'q99': Q99, 'mask': MASK}} for key in dataset_keys}
    config = {
        'model_type': 'tiny_openvla',
        'architectures': ['TinyOpenVLAForActionPrediction'],
        'auto_map': {  # the same keys as openvla/openvla-7b's config.json
            'AutoConfig': 'configuration_tinyopenvla.TinyOpenVLAConfig',
            'AutoModelForVision2Seq': 'modeling_tinyopenvla.TinyOpenVLAForActionPrediction',
        },
        'norm_stats': stats,
        'n_action_bins': N_BINS,
        'text_vocab_size': VOCAB,
    }
    (directory / 'config.json').write_text(json.dumps(config))
    (directory / 'processor_config.json').write_text(json.dumps(
        {'auto_map': {'AutoProcessor': 'processing_tinyopenvla.TinyOpenVLAProcessor'}}))
    load_tokenizer().save_pretrained(directory)
    save_file({'proj.weight': torch.ones(1, 3), 'proj.bias': torch.zeros(1)},
              str(directory / 'model.safetensors'), metadata={'format': 'pt'})
    return directory


@pytest.fixture(scope='module', autouse=True)
def offline():
    """Refuse any hub access, even if the caller forgot HF_HUB_OFFLINE=1."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('HF_HUB_OFFLINE', '1')
        patch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
        yield


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory, offline):
    return write_tiny_openvla(tmp_path_factory.mktemp('openvla') / 'tiny_openvla_one',
                              ['bridge_orig'])


@pytest.fixture(scope='module')
def two_key_model_dir(tmp_path_factory, offline):
    return write_tiny_openvla(tmp_path_factory.mktemp('openvla') / 'tiny_openvla_two',
                              ['bridge_orig', 'fractal'])


@pytest.fixture(scope='module')
def policy(model_dir):
    return make_policy('openvla', model_name_or_path=model_dir, device='cpu')


def frame():
    return np.random.default_rng(0).integers(0, 256, size=(24, 20, 3), dtype=np.uint8)


def test_loads_remote_class_through_auto_map(model_dir, policy):
    assert type(policy.model).__name__ == 'TinyOpenVLAForActionPrediction'
    assert resolve_model_class(model_dir).__name__ == 'TinyOpenVLAForActionPrediction'
    assert type(policy.processor).__name__ == 'TinyOpenVLAProcessor'


def test_cpu_defaults_to_float32(model_dir, policy):
    if not torch.cuda.is_available():
        assert OpenVLAPolicy(model_dir).device == torch.device('cpu')
    assert policy.device == torch.device('cpu')
    assert policy.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in policy.model.parameters())
    policy.predict(Observation(frame(), 'wipe the table'))
    call = policy.model.calls[-1]
    assert call['pixel_values'].dtype == torch.float32  # cast from the processor's float64
    assert call['input_ids'].dtype == torch.long  # integer inputs are not cast
    assert call['kwargs']['do_sample'] is False


def test_prompt_and_action(policy):
    action = policy.predict(Observation(frame(), 'pick up the red cube'))
    assert policy.processor.prompts[-1] == (
        'In: What action should the robot take to pick up the red cube?\nOut:')
    assert action.shape == (1, SPEC.dim) and action.dtype == np.float64
    np.testing.assert_allclose(action[0], expected_action())
    assert policy.model.calls[-1]['unnorm_key'] == 'bridge_orig'


def test_unnorm_key_resolution(two_key_model_dir):
    with pytest.raises(OpenVLAConfigError, match=r"\['bridge_orig', 'fractal'\]"):
        OpenVLAPolicy(two_key_model_dir)
    with pytest.raises(OpenVLAConfigError, match="unknown unnorm_key 'droid'"):
        OpenVLAPolicy(two_key_model_dir, unnorm_key='droid')
    policy = OpenVLAPolicy(two_key_model_dir, unnorm_key='fractal')
    policy.predict(Observation(frame(), 'open the drawer'))
    assert policy.model.calls[-1]['unnorm_key'] == 'fractal'
    assert resolve_unnorm_key({'only': {}}, None) == 'only'
    with pytest.raises(OpenVLAConfigError, match='no norm_stats'):
        resolve_unnorm_key({}, None)


def test_action_dim_mismatch(model_dir, policy, monkeypatch):
    with pytest.raises(ActionSpecMismatchError, match='expected dimension 7'):
        OpenVLAPolicy(model_dir, action_spec=['right_hand_pose'])
    monkeypatch.setattr(policy.model, 'predict_action', lambda **kwargs: np.zeros(3))
    with pytest.raises(ActionSpecMismatchError, match='predict_action'):
        policy.predict(Observation(frame(), 'go'))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_defaults_to_bf16_and_returns_the_same_action(model_dir):
    policy = OpenVLAPolicy(model_dir)
    assert policy.device.type == 'cuda' and policy.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 and p.is_cuda for p in policy.model.parameters())
    action = policy.predict(Observation(frame(), 'pick up the red cube'))
    call = policy.model.calls[-1]
    assert call['pixel_values'].dtype == torch.bfloat16 and call['pixel_values'].is_cuda
    assert call['input_ids'].dtype == torch.long and call['input_ids'].is_cuda
    assert action.shape == (1, SPEC.dim) and action.dtype == np.float64
    np.testing.assert_allclose(action[0], expected_action())


@pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec('bitsandbytes'),
                    reason='needs a CUDA device without bitsandbytes')
def test_quantization_on_cuda_without_bitsandbytes_names_the_package(model_dir):
    with pytest.raises(OpenVLAConfigError, match='bitsandbytes package is not installed'):
        OpenVLAPolicy(model_dir, load_in_4bit=True)


@pytest.mark.parametrize('flag', ['load_in_8bit', 'load_in_4bit'])
def test_quantization_needs_bitsandbytes_and_cuda(model_dir, flag):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA; the error is for CPU-only hosts')
    with pytest.raises(OpenVLAConfigError, match=f'{flag}=True cannot be used: .*CUDA'):
        OpenVLAPolicy(model_dir, **{flag: True})
    with pytest.raises(OpenVLAConfigError, match='not both'):
        OpenVLAPolicy(model_dir, load_in_8bit=True, load_in_4bit=True)
