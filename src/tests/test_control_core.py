"""The server's ROS-free decisions: goal checks, the control tick, chunking and statistics."""

from humanoid_vla.actions import ActionSpec, HumanoidAction, Pose
from humanoid_vla.control.controller import goal_start_command, PolicyError, VLAController
from humanoid_vla.control.goal_check import check_goal, GoalLimits
from humanoid_vla.control.goal_stats import GoalStats
from humanoid_vla.control.policy_loader import load_policy
from humanoid_vla.policies.base import Observation, Policy
from humanoid_vla.safety import SafetyFilter, SafetyLimits, UnsafeActionError
import numpy as np
import pytest

SPEC = ActionSpec(('right_hand_pose', 'right_gripper'))
LIMITS = GoalLimits(default_max_steps=50, max_steps_limit=100, max_instruction_length=20)
IMAGE = np.zeros((8, 8, 3), np.uint8)


def safety(step=0.05):
    return SafetyFilter(SafetyLimits([-1, -1, -1], [1, 1, 1], step, 0.3))


@pytest.mark.parametrize('instruction, max_steps, reason', [
    ('', 10, 'empty'), ('   ', 10, 'empty'), ('x' * 21, 10, '21 characters'),
    ('pick', -1, '>= 0'), ('pick', 101, "above the server's limit"),
])
def test_bad_goals_are_refused_with_a_reason(instruction, max_steps, reason):
    decision = check_goal(instruction, max_steps, LIMITS)
    assert not decision.accepted and reason in decision.reason


def test_goal_without_policy_is_refused_and_zero_steps_means_default():
    assert 'no policy' in check_goal('pick', 5, LIMITS, policy_error='missing dir').reason
    assert check_goal('pick', 0, LIMITS).max_steps == 50
    assert check_goal('pick', 100, LIMITS).max_steps == 100


class ChunkPolicy(Policy):
    """Return chunks whose rows count calls and rows, so the executed order is visible."""

    def __init__(self, chunk=3, bad=None):
        self.action_spec, self.chunk, self.calls, self.bad = SPEC, chunk, 0, bad

    def predict(self, observation):
        self.calls += 1
        rows = np.zeros((self.chunk, SPEC.dim))
        rows[:, 0] = self.calls * 0.1 + np.arange(self.chunk) * 0.01
        rows[:, 6] = 1.0
        if self.bad == 'nan':
            rows[0, 2] = np.nan
        if self.bad == 'shape':
            return rows[:, :5]
        if self.bad == 'raise':
            raise RuntimeError('model exploded')
        return rows


def test_chunks_execute_over_ticks_and_replan_after_replan_steps():
    policy = ChunkPolicy(chunk=3)
    controller = VLAController(policy, SPEC, safety(step=1.0), replan_steps=2)
    controller.start_goal()
    xs, calls = [], []
    for _ in range(4):
        outcome = controller.tick(Observation(IMAGE, 'pick'))
        xs.append(round(outcome.action.right_hand_pose.position[0], 3))
        calls.append(outcome.inference_ms is not None)
    assert xs == [0.1, 0.11, 0.2, 0.21]
    assert calls == [True, False, True, False]


@pytest.mark.parametrize('bad, error', [
    ('nan', UnsafeActionError), ('shape', PolicyError), ('raise', PolicyError)])
def test_bad_policy_output_raises(bad, error):
    controller = VLAController(ChunkPolicy(bad=bad), SPEC, safety())
    controller.start_goal()
    with pytest.raises(error):
        controller.tick(Observation(IMAGE, 'pick'))


def test_safety_filter_limits_steps_between_ticks():
    controller = VLAController(ChunkPolicy(chunk=1), SPEC, safety(step=0.05))
    controller.start_goal()
    first = controller.tick(Observation(IMAGE, 'pick'))
    second = controller.tick(Observation(IMAGE, 'pick'))
    moved = second.action.right_hand_pose.position - first.action.right_hand_pose.position
    assert np.linalg.norm(moved) == pytest.approx(0.05)
    assert second.clamps['position_step'] == 1


def _pose(x):
    return Pose(np.array([x, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]))


def test_a_goal_starts_its_step_limit_from_the_measured_hand():
    """After the hand moved between goals, the first command steps from where it is now."""
    last = HumanoidAction(right_hand_pose=_pose(0.8), right_gripper=1.0)
    start = goal_start_command(last, {'right_hand_pose': _pose(0.0)})
    assert start.right_hand_pose.position[0] == 0.0 and start.right_gripper == 1.0
    controller = VLAController(ChunkPolicy(chunk=1), SPEC, safety(step=0.05))
    controller.start_goal(start)
    first = controller.tick(Observation(IMAGE, 'pick'))  # the policy asks for x = 0.1
    assert first.action.right_hand_pose.position[0] == pytest.approx(0.05)  # 0.0 + one step
    controller.start_goal(last)  # from the last command instead: back towards 0.8
    assert controller.tick(Observation(IMAGE, 'pick')).action.right_hand_pose.position[0] \
        == pytest.approx(0.75)


def test_goal_start_ignores_broken_measurements_and_may_know_nothing():
    last = HumanoidAction(right_hand_pose=_pose(0.8), right_gripper=0.0)
    broken = Pose(np.array([np.nan, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]))
    zero_quaternion = Pose(np.zeros(3), np.zeros(4))
    for bad in (broken, zero_quaternion):
        start = goal_start_command(last, {'right_hand_pose': bad})
        assert start.right_hand_pose.position[0] == 0.8
        assert goal_start_command(None, {'right_hand_pose': bad}) is None
    assert goal_start_command(None, {}) is None
    only_measured = goal_start_command(None, {'left_hand_pose': _pose(0.2)})
    assert only_measured.left_hand_pose.position[0] == 0.2
    assert only_measured.right_hand_pose is None
    with pytest.raises(ValueError, match='not a hand pose'):
        goal_start_command(last, {'right_gripper': _pose(0.0)})


def test_goal_stats_summary_reports_steps_latency_and_clamps():
    stats = GoalStats()
    for ms in range(1, 101):
        stats.record_tick(float(ms), {'workspace': 1, 'gripper': 0})
    stats.record_tick(None, {'workspace': 0})
    text = stats.summary()
    assert 'steps=101' in text and 'mean 50.5 ms' in text and 'p99 99.0 ms' in text
    assert 'clamps=100 (workspace=100)' in text


def test_loader_builds_scripted_and_explains_missing_checkpoint():
    policy = load_policy('scripted', '', SPEC, options={'velocity': [0.0, 0.0, 0.01]})
    assert policy.predict(Observation(IMAGE, 'pick')).shape == (1, SPEC.dim)
    with pytest.raises(ValueError, match='needs policy_checkpoint'):
        load_policy('custom', '', SPEC)
    with pytest.raises(ValueError, match='unknown policy'):
        load_policy('no_such_backend', '', SPEC)
