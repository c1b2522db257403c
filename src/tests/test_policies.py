"""Tests of the policy interface, the registry, the custom VLA policy and the scripted policy."""

import time

from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.checkpoint import save_checkpoint
from humanoid_vla.models import CustomVLAConfig, CustomVLAModel
from humanoid_vla.normalization import NormalizationStats
from humanoid_vla.policies import (
    available_policies,
    make_policy,
    Observation,
    ObservationError,
    Policy,
    register_policy,
    UnknownPolicyError,
    validate_observation,
)
from humanoid_vla.policies.custom import CustomVLAPolicy, TemporalEnsembler
from humanoid_vla.policies.scripted import ScriptedPolicy
import numpy as np
import pytest
import torch

SPEC = ActionSpec()  # right hand pose + gripper: 8-D
CHUNK = 4


def observation(height=48, width=64, instruction='pick up the cube', proprio=None):
    rng = np.random.default_rng(height * width)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Observation(image=image, instruction=instruction, proprio=proprio)


def save_tiny_checkpoint(directory, **overrides):
    fields = {'image_size': 32, 'patch_size': 16, 'vision_hidden_size': 16, 'vision_layers': 1,
              'vision_heads': 2, 'vision_intermediate_size': 32, 'language_encoder': 'tiny',
              'tiny_language_hidden_size': 8, 'tiny_language_layers': 1, 'hidden_size': 16,
              'num_heads': 2, 'num_fusion_layers': 1, 'dropout': 0.0, 'action_dim': SPEC.dim,
              'chunk_size': CHUNK}
    config = CustomVLAConfig(**{**fields, **overrides})
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    actions = rng.normal(loc=3.0, scale=5.0, size=(100, SPEC.dim))
    stats = NormalizationStats.from_actions(actions, mask=~SPEC.gripper_mask())
    save_checkpoint(directory, CustomVLAModel(config), stats, SPEC)
    return directory


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp('policy') / 'ckpt')


# ------------------------------------------------------------------------------- registry
def test_available_policies_lists_builtin_backends():
    assert {'custom', 'openvla', 'scripted'} <= set(available_policies())


def test_unknown_policy_lists_available_ones():
    with pytest.raises(UnknownPolicyError, match='available policies: .*custom.*scripted'):
        make_policy('no_such_policy')
    with pytest.raises(UnknownPolicyError):
        make_policy('base')


def test_make_policy_imports_backend_lazily():
    policy = make_policy('scripted', action_spec=['left_gripper'])
    assert isinstance(policy, ScriptedPolicy) and policy.action_spec.dim == 1


def test_register_policy_refuses_a_taken_name():
    @register_policy('test_only_dummy')
    class Dummy(Policy):
        action_spec = SPEC

        def predict(self, observation):
            return np.zeros((1, SPEC.dim))

    assert 'test_only_dummy' in available_policies()
    assert isinstance(make_policy('test_only_dummy'), Dummy)
    with pytest.raises(ValueError, match='already registered'):
        register_policy('test_only_dummy')(ScriptedPolicy)
    with pytest.raises(ValueError, match='identifier'):
        register_policy('not a name')


# ---------------------------------------------------------------------------- observation
@pytest.mark.parametrize('image, instruction, message', [
    (np.zeros((8, 8, 3), dtype=np.float32), 'go', 'uint8'),
    (np.zeros((8, 8), dtype=np.uint8), 'go', 'shape'),
    (np.zeros((1, 8, 8, 3), dtype=np.uint8), 'go', 'shape'),
    (np.zeros((8, 8, 4), dtype=np.uint8), 'go', '3 channels'),
    (np.zeros((3, 8, 8), dtype=np.uint8), 'go', '3 channels'),
    (np.zeros((0, 8, 3), dtype=np.uint8), 'go', 'empty'),
    (np.zeros((8, 8, 3), dtype=np.uint8), '', 'instruction is empty'),
    (np.zeros((8, 8, 3), dtype=np.uint8), '   ', 'instruction is empty'),
    (np.zeros((8, 8, 3), dtype=np.uint8), None, 'instruction must be a string'),
    ([[0, 0, 0]], 'go', 'numpy array'),
])
def test_observation_errors(image, instruction, message):
    with pytest.raises(ObservationError, match=message):
        validate_observation(Observation(image=image, instruction=instruction))


def test_observation_proprio_errors():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    validate_observation(Observation(image, 'go', np.zeros(3)), proprio_dim=3)
    with pytest.raises(ObservationError, match='needs proprio'):
        validate_observation(Observation(image, 'go'), proprio_dim=3)
    with pytest.raises(ObservationError, match='3 values'):
        validate_observation(Observation(image, 'go', np.zeros(4)), proprio_dim=3)
    with pytest.raises(ObservationError, match='non-finite'):
        validate_observation(Observation(image, 'go', np.array([np.nan])))
    with pytest.raises(ObservationError, match='1-D'):
        validate_observation(Observation(image, 'go', np.zeros((2, 2))))
    with pytest.raises(ObservationError, match='Observation'):
        validate_observation({'image': image, 'instruction': 'go'})


def test_policy_is_abstract():
    with pytest.raises(TypeError):
        Policy()


# ------------------------------------------------------------------------------ custom VLA
def test_custom_policy_predicts_robot_units(checkpoint):
    policy = make_policy('custom', checkpoint=checkpoint)
    assert isinstance(policy, CustomVLAPolicy) and policy.action_spec == SPEC
    obs = observation()
    actions = policy.predict(obs)
    assert actions.shape == (CHUNK, SPEC.dim) and actions.dtype == np.float64
    normalized = policy.predict_normalized(obs)
    np.testing.assert_allclose(actions, policy.stats.unnormalize(normalized))
    position = ~SPEC.gripper_mask()
    assert not np.allclose(actions[:, position], normalized[:, position])  # scaled back
    np.testing.assert_array_equal(actions[:, ~position], normalized[:, ~position])


def test_custom_policy_resizes_any_frame(checkpoint):
    policy = CustomVLAPolicy(checkpoint)
    pixels = policy.preprocess(observation(height=100, width=30).image)
    assert pixels.shape == (1, 3, 32, 32) and pixels.dtype == torch.float32
    assert 0.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0
    same = policy.preprocess(np.full((32, 32, 3), 255, dtype=np.uint8))
    assert torch.equal(same, torch.ones(1, 3, 32, 32))
    assert policy.predict(observation(height=100, width=30)).shape == (CHUNK, SPEC.dim)


def test_custom_policy_sees_only_the_window_of_its_image_crop(tmp_path):
    # The right half, middle half of the rows of a 48 x 64 frame: rows 12..35, columns 32..63.
    policy = CustomVLAPolicy(save_tiny_checkpoint(tmp_path, image_crop=[0.5, 0.25, 1.0, 0.75]))
    assert policy.image_crop.as_list() == [0.5, 0.25, 1.0, 0.75]
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    frame[12:36, 32:] = 255  # the window white, the rest black: only white is seen
    assert torch.equal(policy.preprocess(frame), torch.ones(1, 3, 32, 32))
    frame[12, 32] = 0  # the window's top-left pixel
    assert float(policy.preprocess(frame).min()) < 1.0
    assert policy.predict(observation(height=48, width=64)).shape == (CHUNK, SPEC.dim)


def test_custom_policy_is_deterministic_and_caches_instruction(checkpoint):
    policy = CustomVLAPolicy(checkpoint)
    obs = observation()
    first = policy.predict(obs)
    np.testing.assert_array_equal(first, policy.predict(obs))
    assert policy.model.instruction_cache.hits >= 1


def test_custom_policy_checks_expected_spec(checkpoint):
    with pytest.raises(ActionSpecMismatchError) as info:
        CustomVLAPolicy(checkpoint, action_spec=['right_hand_pose'])
    assert 'expected dimension 7' in str(info.value) and '8' in str(info.value)
    assert CustomVLAPolicy(checkpoint, action_spec=list(SPEC.parts)).action_spec == SPEC


def test_custom_policy_refuses_bad_observation(checkpoint):
    policy = CustomVLAPolicy(checkpoint)
    with pytest.raises(ObservationError):
        policy.predict(observation(instruction=''))


def test_temporal_ensembler_weights_oldest_first():
    ensembler = TemporalEnsembler(chunk_size=3, decay=0.5)
    chunks = [np.full((3, 1), float(10 * k)) + np.arange(3)[:, None] for k in range(4)]
    assert ensembler.update(chunks[0])[0] == 0.0
    w = np.exp(-0.5 * np.arange(3))
    np.testing.assert_allclose(ensembler.update(chunks[1]), [(w[0] * 1 + w[1] * 10) / w[:2].sum()])
    np.testing.assert_allclose(
        ensembler.update(chunks[2]), [(w[0] * 2 + w[1] * 11 + w[2] * 20) / w.sum()])
    # step 3: chunk 0 has expired, chunks 1..3 remain
    np.testing.assert_allclose(
        ensembler.update(chunks[3]), [(w[0] * 12 + w[1] * 21 + w[2] * 30) / w.sum()])
    ensembler.reset()
    assert ensembler.update(chunks[3])[0] == 30.0
    with pytest.raises(ValueError):
        ensembler.update(np.zeros((2, 1)))


def test_custom_policy_temporal_ensembling(checkpoint):
    policy = CustomVLAPolicy(checkpoint, temporal_ensembling=True, ensemble_decay=0.1)
    plain = CustomVLAPolicy(checkpoint)
    frames = [observation(height=40 + k) for k in range(3)]
    raw = [plain.predict_normalized(obs) for obs in frames]
    outputs = [policy.predict(obs) for obs in frames]
    assert all(out.shape == (1, SPEC.dim) for out in outputs)
    assert policy.chunk_size == 1 and plain.chunk_size == CHUNK
    np.testing.assert_allclose(outputs[0][0], policy.stats.unnormalize(raw[0][0]))
    w = np.exp(-0.1 * np.arange(3))
    expected = (w[0] * raw[0][2] + w[1] * raw[1][1] + w[2] * raw[2][0]) / w.sum()
    np.testing.assert_allclose(outputs[2][0], policy.stats.unnormalize(expected), rtol=1e-6)
    policy.reset()
    np.testing.assert_allclose(policy.predict(frames[2])[0], policy.stats.unnormalize(raw[2][0]),
                               rtol=1e-6)


# -------------------------------------------------------------------------------- scripted
def test_scripted_policy_moves_linearly():
    policy = ScriptedPolicy(SPEC, velocity=(0.1, 0.0, -0.2), chunk_size=2)
    first = policy.predict(observation())
    second = policy.predict(observation())
    assert first.shape == (2, SPEC.dim)
    np.testing.assert_allclose(first[0], [0, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(first[1, :3], [0.1, 0.0, -0.2])
    np.testing.assert_allclose(second[0], first[1])
    assert np.all(second[:, 3:] == first[:, 3:])  # quaternion and gripper constant
    policy.reset()
    np.testing.assert_array_equal(policy.predict(observation()), first)


def test_scripted_policy_nan_and_delay():
    policy = ScriptedPolicy(SPEC, nan_at_call=1, delay_s=0.02)
    start = time.monotonic()
    assert np.all(np.isfinite(policy.predict(observation())))
    assert time.monotonic() - start >= 0.02
    assert np.all(np.isnan(policy.predict(observation())))
    assert np.all(np.isfinite(policy.predict(observation())))


def test_scripted_policy_validates_its_script():
    with pytest.raises(ActionSpecMismatchError):
        ScriptedPolicy(SPEC, start=np.zeros(3))
    with pytest.raises(ValueError, match='hand positions'):
        ScriptedPolicy(SPEC, velocity=np.ones(SPEC.dim))
    with pytest.raises(ValueError, match='chunk_size'):
        ScriptedPolicy(SPEC, chunk_size=0)
    with pytest.raises(ObservationError):
        ScriptedPolicy(SPEC).predict(observation(instruction=''))
