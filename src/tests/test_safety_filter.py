"""Tests for the safety filter between the policy and the robot."""

import math

from humanoid_vla.actions import HumanoidAction, Pose
from humanoid_vla.safety import (
    InvalidSafetyLimitsError,
    SafetyFilter,
    SafetyLimits,
    UnsafeActionError,
)
import numpy as np
import pytest

IDENTITY = [0.0, 0.0, 0.0, 1.0]


def limits(**overrides) -> SafetyLimits:
    """Return a typical limit set, with overrides."""
    values = {'workspace_min': [-0.5, -0.8, 0.0], 'workspace_max': [0.9, 0.8, 1.5],
              'max_position_step': 0.02, 'max_rotation_step': 0.1}
    values.update(overrides)
    return SafetyLimits(**values)


def z_rotation(angle: float) -> np.ndarray:
    """Return the xyzw quaternion of a rotation about z."""
    return np.array([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)])


def angle_between(q0: np.ndarray, q1: np.ndarray) -> float:
    """Return the rotation angle between unit quaternions, computed independently."""
    return 2.0 * math.acos(min(1.0, abs(float(np.dot(q0, q1)))))


def hand(position, orientation=IDENTITY, gripper=None) -> HumanoidAction:
    """Return a right-hand action."""
    return HumanoidAction(right_hand_pose=Pose(position, orientation), right_gripper=gripper)


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite_position_raises_naming_the_part(bad):
    with pytest.raises(UnsafeActionError, match='right_hand_pose.position'):
        SafetyFilter(limits()).apply(hand([0.3, bad, 0.5]))


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_non_finite_orientation_gripper_and_base_raise(bad):
    safety = SafetyFilter(limits())
    with pytest.raises(UnsafeActionError, match='right_hand_pose.orientation'):
        safety.apply(hand([0.3, 0.0, 0.5], [0.0, 0.0, bad, 1.0]))
    with pytest.raises(UnsafeActionError, match='right_gripper'):
        safety.apply(hand([0.3, 0.0, 0.5], gripper=bad))
    with pytest.raises(UnsafeActionError, match='base_velocity'):
        safety.apply(HumanoidAction(base_velocity=[0.0, bad, 0.0]))
    with pytest.raises(UnsafeActionError, match='previous right_hand_pose'):
        safety.apply(hand([0.3, 0.0, 0.5]), previous=hand([bad, 0.0, 0.5]))


def test_workspace_clamp_is_counted():
    safety = SafetyFilter(limits())
    result = safety.apply(hand([2.0, -3.0, 0.5]))
    np.testing.assert_allclose(result.action.right_hand_pose.position, [0.9, -0.8, 0.5])
    assert result.clamps['workspace'] == 1
    assert result.clamped
    inside = safety.apply(hand([0.3, 0.0, 0.5]))
    assert inside.clamps['workspace'] == 0 and not inside.clamped
    assert safety.total_clamps['workspace'] == 1


def test_both_hands_are_counted_separately():
    action = HumanoidAction(left_hand_pose=Pose([5.0, 0.0, 0.5], IDENTITY),
                            right_hand_pose=Pose([0.0, 0.0, -1.0], IDENTITY))
    result = SafetyFilter(limits()).apply(action)
    assert result.clamps['workspace'] == 2
    np.testing.assert_allclose(result.action.right_hand_pose.position, [0.0, 0.0, 0.0])


def test_position_step_is_limited_exactly_along_the_displacement():
    safety = SafetyFilter(limits())
    previous = hand([0.3, 0.0, 0.5])
    result = safety.apply(hand([0.5, 0.1, 0.7]), previous)
    step = result.action.right_hand_pose.position - previous.right_hand_pose.position
    assert np.linalg.norm(step) == pytest.approx(0.02, abs=1e-12)
    direction = np.array([0.2, 0.1, 0.2]) / np.linalg.norm([0.2, 0.1, 0.2])
    np.testing.assert_allclose(step / np.linalg.norm(step), direction, atol=1e-12)
    assert result.clamps['position_step'] == 1


def test_small_step_passes_unchanged():
    previous = hand([0.3, 0.0, 0.5])
    result = SafetyFilter(limits()).apply(hand([0.31, 0.0, 0.5]), previous)
    np.testing.assert_array_equal(result.action.right_hand_pose.position, [0.31, 0.0, 0.5])
    assert not result.clamped


def test_repeated_ticks_walk_to_the_target_at_the_step_limit():
    safety = SafetyFilter(limits())
    command = hand([0.3, 0.0, 0.5])
    target = hand([0.3, 0.1, 0.5])
    for _ in range(4):
        command = safety.apply(target, command).action
    np.testing.assert_allclose(command.right_hand_pose.position, [0.3, 0.08, 0.5], atol=1e-12)
    assert safety.total_clamps['position_step'] == 4
    safety.reset()
    assert all(count == 0 for count in safety.total_clamps.values())


def test_rotation_step_is_limited_by_slerp():
    safety = SafetyFilter(limits(max_rotation_step=0.1))
    previous = hand([0.3, 0.0, 0.5], z_rotation(0.2))
    result = safety.apply(hand([0.3, 0.0, 0.5], z_rotation(1.5)), previous)
    orientation = result.action.right_hand_pose.orientation
    assert angle_between(previous.right_hand_pose.orientation, orientation) == pytest.approx(
        0.1, abs=1e-6)
    np.testing.assert_allclose(orientation, z_rotation(0.3), atol=1e-9)
    assert result.clamps['rotation_step'] == 1


def test_rotation_limit_takes_the_shortest_path():
    safety = SafetyFilter(limits(max_rotation_step=0.05))
    rng = np.random.default_rng(3)
    for _ in range(100):
        start, goal = rng.normal(size=4), rng.normal(size=4)
        start /= np.linalg.norm(start)
        previous = hand([0.3, 0.0, 0.5], start)
        result = safety.apply(hand([0.3, 0.0, 0.5], goal), previous)
        orientation = result.action.right_hand_pose.orientation
        assert np.linalg.norm(orientation) == pytest.approx(1.0, abs=1e-12)
        goal_unit = goal / np.linalg.norm(goal)
        assert angle_between(start, orientation) <= 0.05 + 1e-6
        progress = angle_between(start, goal_unit) - angle_between(orientation, goal_unit)
        assert progress == pytest.approx(min(0.05, angle_between(start, goal_unit)), abs=1e-6)


def test_quaternion_is_normalised_and_zero_quaternion_refused():
    safety = SafetyFilter(limits())
    result = safety.apply(hand([0.3, 0.0, 0.5], [0.0, 0.0, 0.0, 3.0]))
    np.testing.assert_allclose(result.action.right_hand_pose.orientation, IDENTITY)
    assert not result.clamped
    with pytest.raises(UnsafeActionError, match='right_hand_pose'):
        safety.apply(hand([0.3, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]))


def test_gripper_clamp():
    safety = SafetyFilter(limits(gripper_min=0.1, gripper_max=0.9))
    action = HumanoidAction(left_gripper=-0.5, right_gripper=1.2)
    result = safety.apply(action)
    assert result.action.left_gripper == 0.1 and result.action.right_gripper == 0.9
    assert result.clamps['gripper'] == 2
    assert safety.apply(HumanoidAction(right_gripper=0.5)).clamps['gripper'] == 0


def test_base_velocity_clamped_or_zeroed():
    moving = HumanoidAction(base_velocity=[0.5, -0.5, 2.0])
    no_base = SafetyFilter(limits()).apply(moving)
    np.testing.assert_array_equal(no_base.action.base_velocity, [0.0, 0.0, 0.0])
    assert no_base.clamps['base_velocity'] == 1
    bounded = SafetyFilter(limits(max_base_velocity=[0.2, 0.2, 1.0])).apply(moving)
    np.testing.assert_allclose(bounded.action.base_velocity, [0.2, -0.2, 1.0])
    assert bounded.clamps['base_velocity'] == 1
    still = SafetyFilter(limits()).apply(HumanoidAction(base_velocity=[0.0, 0.0, 0.0]))
    assert still.clamps['base_velocity'] == 0


def test_input_action_is_not_modified():
    action = hand([2.0, 0.0, 0.5], [0.0, 0.0, 0.0, 2.0], gripper=1.5)
    SafetyFilter(limits()).apply(action, hand([0.3, 0.0, 0.5]))
    np.testing.assert_array_equal(action.right_hand_pose.position, [2.0, 0.0, 0.5])
    np.testing.assert_array_equal(action.right_hand_pose.orientation, [0, 0, 0, 2.0])
    assert action.right_gripper == 1.5


def test_previous_without_the_part_only_applies_box():
    previous = HumanoidAction(left_hand_pose=Pose([0.0, 0.0, 0.5], IDENTITY))
    result = SafetyFilter(limits()).apply(hand([0.8, 0.0, 0.5]), previous)
    np.testing.assert_array_equal(result.action.right_hand_pose.position, [0.8, 0.0, 0.5])


@pytest.mark.parametrize('overrides, fragment', [
    ({'workspace_min': [1.0, -0.8, 0.0]}, 'below workspace_max'),
    ({'workspace_max': [0.9, 0.8]}, '3 finite numbers'),
    ({'max_position_step': 0.0}, 'max_position_step'),
    ({'max_rotation_step': -0.1}, 'max_rotation_step'),
    ({'max_position_step': float('nan')}, 'max_position_step'),
    ({'gripper_min': 0.8, 'gripper_max': 0.2}, 'gripper_min <= gripper_max'),
    ({'max_base_velocity': [0.1, -0.1, 0.0]}, 'max_base_velocity'),
])
def test_limits_validation(overrides, fragment):
    with pytest.raises(InvalidSafetyLimitsError, match=fragment):
        limits(**overrides)


def test_limits_from_dict():
    config = {'workspace_min': [-0.5, -0.8, 0.0], 'workspace_max': [0.9, 0.8, 1.5],
              'max_position_step': 0.02, 'max_rotation_step': 0.1,
              'max_base_velocity': [0.2, 0.2, 0.5]}
    parsed = SafetyLimits.from_dict(config)
    assert parsed.gripper_max == 1.0
    assert SafetyLimits.from_dict(parsed.to_dict()).to_dict() == parsed.to_dict()
    with pytest.raises(InvalidSafetyLimitsError, match='unknown safety limit key'):
        SafetyLimits.from_dict({**config, 'max_step': 0.1})
    with pytest.raises(InvalidSafetyLimitsError, match='missing'):
        SafetyLimits.from_dict({'workspace_min': [0, 0, 0]})
