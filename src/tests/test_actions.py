"""Tests for the action spec and the structured HumanoidAction."""

import json

from humanoid_vla.actions import (
    ACTION_PARTS,
    ActionSpec,
    ActionSpecMismatchError,
    HumanoidAction,
    InvalidActionError,
    InvalidActionSpecError,
    Pose,
)
import numpy as np
import pytest

FULL = ('left_hand_pose', 'right_hand_pose', 'left_gripper', 'right_gripper', 'base_velocity')


def full_action() -> HumanoidAction:
    """Build an action with every part set to distinct values."""
    return HumanoidAction(
        left_hand_pose=Pose([0.1, 0.2, 0.3], [0.0, 0.0, 0.0, 1.0]),
        right_hand_pose=Pose([0.4, -0.2, 0.9], [0.0, 0.0, np.sin(0.5), np.cos(0.5)]),
        left_gripper=0.25,
        right_gripper=1.0,
        base_velocity=np.array([0.3, -0.1, 0.2]),
    )


def test_registry_dimensions():
    assert {name: part.dim for name, part in ACTION_PARTS.items()} == {
        'left_hand_pose': 7, 'right_hand_pose': 7, 'left_gripper': 1, 'right_gripper': 1,
        'base_velocity': 3}


def test_default_spec_layout():
    spec = ActionSpec()
    assert spec.parts == ('right_hand_pose', 'right_gripper')
    assert spec.dim == 8
    assert spec.slices() == {'right_hand_pose': slice(0, 7), 'right_gripper': slice(7, 8)}
    assert spec.dimension_names()[:3] == ['right_hand_pose.x', 'right_hand_pose.y',
                                          'right_hand_pose.z']
    assert spec.dimension_names()[6] == 'right_hand_pose.qw'
    assert spec.gripper_mask().tolist() == [False] * 7 + [True]
    assert spec.quaternion_slices() == {'right_hand_pose': slice(3, 7)}
    assert spec.position_slices() == {'right_hand_pose': slice(0, 3)}
    assert spec.end_effectors() == ['right_hand']


def test_full_spec_layout_follows_part_order():
    spec = ActionSpec(parts=('base_velocity', 'left_gripper', 'left_hand_pose', 'right_hand_pose'))
    assert spec.dim == 18
    assert spec.slices()['left_hand_pose'] == slice(4, 11)
    assert spec.quaternion_slices() == {'left_hand_pose': slice(7, 11),
                                        'right_hand_pose': slice(14, 18)}
    assert spec.end_effectors() == ['left_hand', 'right_hand']
    assert len(spec.dimension_names()) == spec.dim
    assert spec.gripper_mask().nonzero()[0].tolist() == [3]


@pytest.mark.parametrize('parts, fragment', [
    ((), 'at least one part'),
    (('right_hand_pose', 'elbow'), 'unknown action part'),
    (('right_gripper', 'right_gripper'), 'more than once'),
])
def test_spec_refuses_bad_parts(parts, fragment):
    with pytest.raises(InvalidActionSpecError, match=fragment):
        ActionSpec(parts=parts)


def test_spec_refuses_unsupported_conventions():
    with pytest.raises(ValueError, match='position unit'):
        ActionSpec(position_unit='mm')
    with pytest.raises(ValueError, match='rotation'):
        ActionSpec(rotation='quat_wxyz')
    with pytest.raises(ValueError, match='not the string'):
        ActionSpec(parts='right_gripper')


def test_spec_dict_round_trip_is_json_able():
    spec = ActionSpec(parts=FULL)
    data = json.loads(json.dumps(spec.to_dict()))
    assert ActionSpec.from_dict(data) == spec
    assert data['dim'] == 19


def test_spec_from_dict_refuses_stale_dim_and_unknown_keys():
    with pytest.raises(ActionSpecMismatchError, match='expected dimension 8'):
        ActionSpec.from_dict({'parts': ['right_hand_pose', 'right_gripper'], 'dim': 7})
    with pytest.raises(InvalidActionSpecError, match='unknown action spec key'):
        ActionSpec.from_dict({'parts': ['right_gripper'], 'part': []})
    with pytest.raises(InvalidActionSpecError, match="'parts'"):
        ActionSpec.from_dict({})


def test_spec_from_config_accepts_lists_strings_dicts_and_none():
    expected = ActionSpec(parts=('left_hand_pose', 'left_gripper'))
    assert ActionSpec.from_config(['left_hand_pose', 'left_gripper']) == expected
    assert ActionSpec.from_config('left_hand_pose, left_gripper') == expected
    assert ActionSpec.from_config({'parts': ['left_hand_pose', 'left_gripper']}) == expected
    assert ActionSpec.from_config(expected) is expected
    assert ActionSpec.from_config(None) == ActionSpec()
    with pytest.raises(InvalidActionSpecError):
        ActionSpec.from_config(3)


def test_mismatch_error_names_expected_and_got():
    error = ActionSpecMismatchError(8, 7, parts=('right_hand_pose', 'right_gripper'))
    assert isinstance(error, ValueError)
    assert error.expected == 8 and error.got == 7
    assert 'expected dimension 8' in str(error) and 'got dimension 7' in str(error)
    assert 'right_hand_pose[7]' in str(error)


def test_vector_round_trip_full_spec():
    spec = ActionSpec(parts=FULL)
    action = full_action()
    vector = action.to_vector(spec)
    assert vector.dtype == np.float64 and vector.shape == (19,)
    back = HumanoidAction.from_vector(vector, spec)
    np.testing.assert_allclose(back.to_vector(spec), vector)
    assert back.left_gripper == 0.25
    back.validate()


def test_from_vector_leaves_parts_outside_spec_empty():
    action = HumanoidAction.from_vector([0.1, 0.2, 0.3, 0, 0, 0, 1, 0.5], ActionSpec())
    assert action.left_hand_pose is None and action.base_velocity is None
    assert action.present_parts() == ('right_hand_pose', 'right_gripper')


def test_to_vector_refuses_missing_part():
    action = HumanoidAction(right_gripper=0.5)
    with pytest.raises(InvalidActionError, match='right_hand_pose'):
        action.to_vector(ActionSpec())


@pytest.mark.parametrize('vector', [np.zeros(7), np.zeros(9), np.zeros((1, 8))])
def test_from_vector_refuses_wrong_length(vector):
    with pytest.raises(ActionSpecMismatchError, match='expected dimension 8'):
        HumanoidAction.from_vector(vector, ActionSpec())


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_from_vector_refuses_non_finite(bad):
    vector = np.array([0.1, 0.2, 0.3, 0, 0, 0, 1, 0.5])
    vector[1] = bad
    with pytest.raises(InvalidActionError, match='right_hand_pose.y'):
        HumanoidAction.from_vector(vector, ActionSpec())


def test_from_vector_normalises_quaternions():
    action = HumanoidAction.from_vector([0, 0, 0, 0, 0, 2.0, 2.0, 0.0], ActionSpec())
    np.testing.assert_allclose(action.right_hand_pose.orientation,
                               [0, 0, np.sqrt(0.5), np.sqrt(0.5)])


def test_from_vector_refuses_zero_quaternion_even_when_normalising():
    with pytest.raises(InvalidActionError, match='norm'):
        HumanoidAction.from_vector([0, 0, 0, 0, 0, 0, 1e-9, 0.0], ActionSpec())


def test_from_vector_strict_quaternions():
    spec = ActionSpec()
    nearly_unit = [0, 0, 0, 0, 0, 0, 1.0005, 0.0]
    action = HumanoidAction.from_vector(nearly_unit, spec, normalize_quaternions=False)
    assert action.right_hand_pose.orientation[3] == 1.0005
    with pytest.raises(InvalidActionError, match='not 1'):
        HumanoidAction.from_vector([0, 0, 0, 0, 0, 0, 1.1, 0.0], spec,
                                   normalize_quaternions=False)


def test_validate_refuses_bad_values():
    action = full_action()
    action.validate()
    action.right_gripper = 1.5
    with pytest.raises(InvalidActionError, match='right_gripper'):
        action.validate()
    action = full_action()
    action.left_hand_pose.position[0] = np.nan
    with pytest.raises(InvalidActionError, match='left_hand_pose.position'):
        action.validate()
    action = full_action()
    action.left_hand_pose.orientation[:] = [0, 0, 0, 2.0]
    with pytest.raises(InvalidActionError, match='left_hand_pose'):
        action.validate()


def test_pose_and_action_check_shapes():
    with pytest.raises(InvalidActionError, match='Pose.position'):
        Pose([0.0, 0.0], [0, 0, 0, 1])
    with pytest.raises(InvalidActionError, match='base_velocity'):
        HumanoidAction(base_velocity=[0.0, 0.0])
    with pytest.raises(InvalidActionError, match='must be a Pose'):
        HumanoidAction(right_hand_pose=np.zeros(7))
    np.testing.assert_array_equal(Pose.from_array(np.arange(7.0)).to_array(), np.arange(7.0))
    assert Pose.identity().orientation.tolist() == [0, 0, 0, 1]


def test_pose_copies_its_inputs():
    position = np.zeros(3)
    pose = Pose(position, [0, 0, 0, 1])
    position[0] = 5.0
    assert pose.position[0] == 0.0
