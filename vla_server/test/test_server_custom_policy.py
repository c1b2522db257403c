"""The default backend (custom VLA, default model config) driven end to end through the server."""

import time

from humanoid_interfaces.action import ExecuteVLATask
from humanoid_vla.actions import ActionSpec
from humanoid_vla.checkpoint import save_untrained_checkpoint
from humanoid_vla.models import CustomVLAConfig
import numpy as np
import pytest

Result = ExecuteVLATask.Result
pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _default_checkpoint(directory, parts, **config):
    """Save the default model config (random weights, ``config`` changes) for these parts."""
    spec = ActionSpec(tuple(parts))
    model_config = CustomVLAConfig(action_dim=spec.dim, **config) if config else None
    return save_untrained_checkpoint(directory, spec, model_config)


def _proprio_checkpoint(directory):
    """Save a default-config checkpoint that needs a 4-D joint state."""
    return _default_checkpoint(directory, ['right_hand_pose', 'right_gripper'],
                               use_proprio=True, proprio_dim=4)


def test_custom_backend_runs_goal_and_publishes_finite_poses(harness, start_server, tmp_path):
    checkpoint = _default_checkpoint(tmp_path / 'ckpt', ['right_hand_pose', 'right_gripper'])
    start_server(policy_backend='custom', policy_checkpoint=str(checkpoint),
                 control_rate_hz=10.0)
    result, feedback = harness.run('pick up the red cup', 4, timeout=60.0)
    assert result.error_code == Result.MAX_STEPS_REACHED, result.message
    assert result.steps_executed == 4 and len(feedback) == 4
    assert all(f.inference_time_ms > 0 for f in feedback)
    positions = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z]
                          for _, m in harness.poses])
    assert positions.shape == (4, 3) and np.all(np.isfinite(positions))
    assert np.all(positions >= [0.05, -0.5, -0.25]) and np.all(positions <= [0.6, 0.3, 0.35])
    assert all(0.0 <= g <= 1.0 for g in harness.grippers)


def test_goal_sent_before_the_first_joint_state_waits_for_it(harness, start_server, tmp_path):
    # A policy that needs proprioception once ended a demo's goal at step 0 (POLICY_ERROR: no
    # proprio) because the first camera frame reached the server before the first joint state.
    checkpoint = _proprio_checkpoint(tmp_path / 'ckpt')
    start_server(policy_backend='custom', policy_checkpoint=str(checkpoint),
                 control_rate_hz=10.0, camera_timeout_s=3.0)
    feedback = []
    handle = harness.send('pick up the red cup', 3, feedback)
    time.sleep(0.5)
    harness.joint_positions = [0.1, 0.2, 0.3, 0.4]
    result = harness.result(handle, timeout=60.0)
    assert result.error_code == Result.MAX_STEPS_REACHED, result.message
    assert result.steps_executed == 3


def test_goal_without_the_joint_state_its_policy_needs_ends_with_the_reason(
        harness, start_server, tmp_path):
    checkpoint = _proprio_checkpoint(tmp_path / 'ckpt')
    start_server(policy_backend='custom', policy_checkpoint=str(checkpoint),
                 camera_timeout_s=0.5)
    result, feedback = harness.run('pick up the red cup', 3, timeout=60.0)
    assert result.error_code == Result.POLICY_ERROR and feedback == []
    assert 'needs proprio (a 4-D state vector)' in result.message


def test_checkpoint_for_another_robot_is_refused_with_both_dimensions(harness, start_server,
                                                                      tmp_path):
    parts = ['left_hand_pose', 'right_hand_pose', 'left_gripper', 'right_gripper']
    checkpoint = _default_checkpoint(tmp_path / 'ckpt', parts)
    process = start_server(policy_backend='custom', policy_checkpoint=str(checkpoint))
    result, _ = harness.run('pick up the red cup', 4)
    assert result.error_code == Result.NO_POLICY
    assert 'ActionSpecMismatchError' in result.message
    assert '8' in result.message and '16' in result.message
    process.stop()
