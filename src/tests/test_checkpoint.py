"""Tests of checkpoint directories: round trip and the errors for broken ones."""

import json

from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    load_checkpoint,
    save_checkpoint,
    SPEC_FILENAME,
)
from humanoid_vla.models import CustomVLAConfig, CustomVLAModel
from humanoid_vla.normalization import NormalizationStats, STATS_FILENAME
import numpy as np
import pytest
import torch

SPEC = ActionSpec()  # right hand pose + gripper: 8-D


def tiny_model(action_dim=SPEC.dim):
    config = CustomVLAConfig(
        image_size=32, patch_size=16, vision_hidden_size=16, vision_layers=1, vision_heads=2,
        vision_intermediate_size=32, language_encoder='tiny', tiny_language_hidden_size=8,
        tiny_language_layers=1, hidden_size=16, num_heads=2, num_fusion_layers=1, dropout=0.0,
        action_dim=action_dim, chunk_size=2,
    )
    torch.manual_seed(0)
    return CustomVLAModel(config).eval()


def stats_for(spec):
    rng = np.random.default_rng(0)
    return NormalizationStats.from_actions(rng.normal(size=(50, spec.dim)),
                                           mask=~spec.gripper_mask())


@pytest.fixture
def checkpoint(tmp_path):
    directory = tmp_path / 'ckpt'
    save_checkpoint(directory, tiny_model(), stats_for(SPEC), SPEC, extra={'lr': 1e-3})
    return directory


def test_round_trip(checkpoint):
    loaded = load_checkpoint(checkpoint)
    assert loaded.spec == SPEC
    assert loaded.extra == {'lr': 1e-3}
    np.testing.assert_array_equal(loaded.stats.q99, stats_for(SPEC).q99)
    assert isinstance(loaded.model, CustomVLAModel) and not loaded.model.training
    original = tiny_model()
    for name, value in original.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value), name


def test_extra_is_optional(tmp_path):
    save_checkpoint(tmp_path, tiny_model(), stats_for(SPEC), SPEC)
    assert load_checkpoint(tmp_path).extra is None


def test_missing_directory(tmp_path):
    missing = tmp_path / 'nope'
    with pytest.raises(CheckpointNotFoundError, match='does not exist') as info:
        load_checkpoint(missing)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, CheckpointError)
    assert str(missing) in str(info.value)


def test_missing_stats(checkpoint):
    (checkpoint / STATS_FILENAME).unlink()
    with pytest.raises(CheckpointNotFoundError, match=STATS_FILENAME) as info:
        load_checkpoint(checkpoint)
    assert str(checkpoint) in str(info.value)


def test_missing_spec_and_weights_are_all_named(checkpoint):
    (checkpoint / SPEC_FILENAME).unlink()
    (checkpoint / 'model.safetensors').unlink()
    with pytest.raises(CheckpointNotFoundError) as info:
        load_checkpoint(checkpoint)
    assert SPEC_FILENAME in str(info.value) and 'model weights' in str(info.value)


def test_model_and_spec_dimensions_must_agree(checkpoint):
    (checkpoint / SPEC_FILENAME).write_text(json.dumps(ActionSpec(('right_hand_pose',)).to_dict()))
    with pytest.raises(ActionSpecMismatchError) as info:
        load_checkpoint(checkpoint)
    assert '7' in str(info.value) and '8' in str(info.value)


def test_save_refuses_mismatched_model(tmp_path):
    with pytest.raises(ActionSpecMismatchError):
        save_checkpoint(tmp_path, tiny_model(action_dim=7), stats_for(SPEC), SPEC)


def test_corrupt_metadata(checkpoint):
    (checkpoint / STATS_FILENAME).write_text('{not json')
    with pytest.raises(CheckpointError, match='not valid JSON'):
        load_checkpoint(checkpoint)


def test_wrong_model_type(checkpoint):
    config = json.loads((checkpoint / 'config.json').read_text())
    config['model_type'] = 'bert'
    (checkpoint / 'config.json').write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match='bert'):
        load_checkpoint(checkpoint)


def test_untrained_checkpoint_loads_and_predicts_inside_its_action_range(tmp_path):
    from humanoid_vla.actions import ActionSpec
    from humanoid_vla.checkpoint import load_checkpoint, save_untrained_checkpoint
    from humanoid_vla.models import CustomVLAConfig
    from humanoid_vla.policies.base import Observation
    from humanoid_vla.policies.custom import CustomVLAPolicy
    import numpy as np

    spec = ActionSpec(('right_hand_pose', 'right_gripper'))
    tiny = CustomVLAConfig(action_dim=spec.dim, language_encoder='tiny', image_size=64,
                           patch_size=32, vision_hidden_size=32, vision_layers=1,
                           vision_heads=2, vision_intermediate_size=64, hidden_size=32,
                           num_heads=2, num_fusion_layers=1)
    directory = save_untrained_checkpoint(tmp_path / 'ckpt', spec, config=tiny)
    assert load_checkpoint(directory).spec == spec
    action = CustomVLAPolicy(directory).predict(
        Observation(np.zeros((48, 64, 3), np.uint8), 'touch the cup'))
    assert action.shape == (1, spec.dim)
    assert np.all(action[0, :3] >= [0.2, -0.3, -0.05])
    assert np.all(action[0, :3] <= [0.45, 0.05, 0.1])
