"""The pick-and-place diagnosis sorts real rollouts by what went wrong, closing by closing."""

import json
import os

from humanoid_vla.actions import ActionSpec
from humanoid_vla.checkpoint import save_untrained_checkpoint
from humanoid_vla.evaluation import diagnose
from humanoid_vla.evaluation.pick_diagnosis import (classify, Closing, EpisodeDiagnosis,
                                                    format_summary, OUTCOMES, Release,
                                                    run_episode, spot_offsets, summarize)
from humanoid_vla.evaluation.rollout import expert_actor, policy_actors
from humanoid_vla.policies.base import Policy
from humanoid_vla.sim.gl import select_gl_backend
from humanoid_vla.sim.tasks import NEXT_TO_GAP, sample_task
import numpy as np
import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
GL_BACKEND = select_gl_backend()
pytest.importorskip('mujoco', reason='MuJoCo is not installed (see requirements.txt)')
pytest.importorskip('mink', reason='mink is not installed (see requirements.txt)')
from humanoid_vla.policies.custom import CustomVLAPolicy  # noqa: E402,I100
from humanoid_vla.sim import grasp  # noqa: E402

needs_rendering = pytest.mark.skipif(GL_BACKEND is None, reason='no offscreen OpenGL backend')
# A train-split pick-and-place "next to" another pickable object, and one "on the plate".
NEXT_TO_SEED, ON_PLATE_SEED = 10000, 10001


def closing(attached=None) -> Closing:
    return Closing(step=5, target_distance_m=0.01, nearest='red_cup', nearest_distance_m=0.01,
                   attached=attached)


def test_outcomes_follow_the_order_success_then_what_the_hand_held():
    task = sample_task(NEXT_TO_SEED, 'pick_place')
    other = next(n for n in task.objects if n not in (task.target, task.reference))
    assert classify(task, True, [closing(task.target)], [task.target]) == 'success'
    assert classify(task, False, [], []) == 'never_closed'
    assert classify(task, False, [closing()], []) == 'missed'
    assert classify(task, False, [closing(task.reference)], [task.reference]) \
        == 'picked_reference'
    assert classify(task, False, [closing(other)], [other]) == 'wrong_object'
    # Held the target at some point: what failed was putting it down, whatever else it held.
    assert classify(task, False, [closing(other), closing(task.target)],
                    [other, task.target]) == 'not_placed'


def test_summary_counts_outcomes_per_relation_and_reads_the_first_closing():
    def episode(relation, outcome, distances):
        return EpisodeDiagnosis(1, 'i', 't', 'r', relation, outcome, 10,
                                [Closing(3, d, 't' if d < 0.05 else 'r', min(d, 0.02))
                                 for d in distances])
    not_placed = episode('on', 'not_placed', [0.02, 0.3])
    not_placed.releases = [Release(4, 0.05, 0.1), Release(9, 0.3, 0.0)]  # the last one counts
    episodes = [episode('on', 'success', [0.0]), not_placed,
                episode('next_to', 'missed', [0.15]), episode('next_to', 'never_closed', [])]
    summary = summarize(episodes)
    assert summary['outcomes']['success'] == 1 and sum(summary['outcomes'].values()) == 4
    assert summary['by_relation']['on']['not_placed'] == 1
    assert summary['by_relation']['next_to'] == {**dict.fromkeys(OUTCOMES, 0), 'missed': 1,
                                                 'never_closed': 1}
    assert summary['first_closings'] == 3
    assert summary['first_closing_target_cm_median'] == 2.0
    assert summary['first_closing_nearest_is_target'] == 2
    assert summary['missed_target_cm_median'] == 15.0
    assert summary['not_placed_last_release_gap_cm'] == {'next_to': [], 'on': [30.0]}
    assert summary['not_placed_last_release_spot_cm'] == []
    text = format_summary('x', summary)
    assert 'missed 1' in text and 'next_to  2 episodes' in text
    assert 'at the last release (cm): on 30.0' in text
    let_go = episode('next_to', 'not_placed', [0.0])
    let_go.releases = [Release(9, -0.03, 0.04, spot_radial_m=-0.089, spot_lateral_m=0.053)]
    summary = summarize(episodes + [let_go])
    assert summary['not_placed_last_release_spot_cm'] == [[-8.9, 5.3]]
    assert "expert's spot at the last release" in format_summary('x', summary)


def test_spot_offsets_are_along_and_across_the_way_from_the_reference():
    reference, spot = np.array([0.3, -0.1]), np.array([0.3, 0.0])  # the spot is on its left
    radial, lateral = spot_offsets(np.array([0.32, -0.03]), spot, reference)
    assert radial == pytest.approx(-0.03) and lateral == pytest.approx(-0.02)


@needs_rendering
@pytest.mark.parametrize('seed', [NEXT_TO_SEED, ON_PLATE_SEED])
def test_the_expert_succeeds_after_one_closing_at_the_target(env, seed):
    task = sample_task(seed, 'pick_place')
    episode = run_episode(env, task, expert_actor)
    assert episode.outcome == 'success', episode
    assert len(episode.closings) == 1
    first = episode.closings[0]
    assert first.attached == task.target and first.nearest == task.target
    assert first.target_distance_m <= grasp.ATTACH_DISTANCE
    assert episode.picked == [task.target]
    # Let go once, just above the table, beside the reference or within the plate.
    [release] = episode.releases
    assert first.step < release.step <= episode.steps
    assert 0.0 <= release.height_m < 0.03
    if task.relation == 'next_to':
        assert 0.0 < release.reference_gap_m <= NEXT_TO_GAP
        # The expert lets go at its own spot.
        assert abs(release.spot_radial_m) < 0.02 and abs(release.spot_lateral_m) < 0.02
    else:
        assert release.reference_gap_m < 0.0
        assert release.spot_radial_m is None


@needs_rendering
def test_a_hand_that_never_closes_is_told_apart_from_one_that_misses(env):
    task = sample_task(NEXT_TO_SEED, 'pick_place')
    home = np.concatenate([*env.world.hand_pose(env.side), [0.0]])

    def stays_open(env_, task_):
        return lambda: home

    def closes_where_it_is(env_, task_):
        return lambda: np.concatenate([home[:7], [1.0]])
    assert run_episode(env, task, stays_open, max_steps=3).outcome == 'never_closed'
    missed = run_episode(env, task, closes_where_it_is, max_steps=3)
    assert missed.outcome == 'missed' and len(missed.closings) == 1
    assert missed.closings[0].target_distance_m > grasp.ATTACH_DISTANCE


@needs_rendering
def test_a_checkpoint_runs_through_the_servers_controller(env, tmp_path, small_sim_config):
    spec = ActionSpec(('right_hand_pose', 'right_gripper'))
    config = small_sim_config(use_proprio=True, proprio_dim=43)
    policy = CustomVLAPolicy(save_untrained_checkpoint(tmp_path / 'ckpt', spec, config))
    episode = run_episode(env, sample_task(ON_PLATE_SEED, 'pick_place'), policy_actors(policy),
                          max_steps=4)
    assert episode.steps == 4 and episode.outcome in OUTCOMES
    assert all(c.attached in (None, *env.task.objects) for c in episode.closings)


@needs_rendering
def test_the_command_line_writes_every_episode(tmp_path, capsys):
    out = tmp_path / 'expert.json'
    assert diagnose.main(['--expert', '--episodes', '2', '--seed-start', '10001',
                          '--seed-step', '2', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'seed 10001' in printed and 'seed 10003' in printed
    written = json.loads(out.read_text())
    assert [e['seed'] for e in written['episodes']] == [10001, 10003]
    assert written['summary']['outcomes']['success'] == 2


class LowersAndRemembers(Policy):
    """Lowers the open hand 2 cm a tick from where it started; remembers the joints it saw."""

    action_spec = ActionSpec(('right_hand_pose', 'right_gripper'))

    def __init__(self, home: np.ndarray) -> None:
        self.home = home
        self.seen: list[np.ndarray] = []

    def predict(self, observation):
        self.seen.append(observation.proprio.copy())
        action = self.home.copy()
        action[2] -= 0.02 * len(self.seen)
        return action[None, :]


@needs_rendering
@pytest.mark.parametrize('delay', [0, 2])
def test_an_observation_delay_feeds_the_policy_older_frames(env, delay):
    task = sample_task(ON_PLATE_SEED, 'pick_place')
    env.reset_task(task)
    policy = LowersAndRemembers(np.concatenate([*env.world.hand_pose(env.side), [0.0]]))
    shown = []
    make = policy_actors(policy, observation_delay=delay)

    def remembering(env_, task_):
        act = make(env_, task_)

        def step():
            shown.append(env_.observe(render=False)['joint_positions'].astype(np.float32))
            return act()
        return step
    run_episode(env, task, remembering, max_steps=5)
    assert len(policy.seen) == 5
    assert all(not np.array_equal(a, b) for a, b in zip(shown, shown[1:]))  # the arm moved
    for tick, seen in enumerate(policy.seen):
        np.testing.assert_array_equal(seen, shown[max(0, tick - delay)])
    with pytest.raises(ValueError, match='observation_delay'):
        policy_actors(policy, observation_delay=-1)


class HoldsInChunks(Policy):
    """Returns chunks of 3 actions that keep the open hand where it started; counts calls."""

    action_spec = ActionSpec(('right_hand_pose', 'right_gripper'))
    chunk_size = 3

    def __init__(self, home: np.ndarray) -> None:
        self.home = home
        self.calls = 0

    def predict(self, observation):
        self.calls += 1
        return np.repeat(self.home[None, :], self.chunk_size, axis=0)


@needs_rendering
@pytest.mark.parametrize('replan_steps, queries', [(1, 6), (3, 2)])
def test_replan_steps_execute_that_much_of_each_chunk(env, replan_steps, queries):
    task = sample_task(ON_PLATE_SEED, 'pick_place')
    env.reset_task(task)
    policy = HoldsInChunks(np.concatenate([*env.world.hand_pose(env.side), [0.0]]))
    run_episode(env, task, policy_actors(policy, replan_steps=replan_steps), max_steps=6)
    assert policy.calls == queries


@needs_rendering
def test_substeps_apply_each_action_that_many_times_within_one_tick(env):
    task = sample_task(ON_PLATE_SEED, 'pick_place')
    calls = []
    apply_action = env.apply_action

    def counting(action, sim_seconds=None):
        calls.append(sim_seconds)
        return apply_action(action, sim_seconds=sim_seconds)
    env.apply_action = counting
    try:
        episode = run_episode(env, task, expert_actor, max_steps=3, substeps=5)
    finally:
        del env.apply_action
    assert episode.steps == 3 and len(calls) == 15
    assert all(seconds == pytest.approx(0.02) for seconds in calls)
    with pytest.raises(ValueError, match='substeps'):
        run_episode(env, task, expert_actor, substeps=0)
