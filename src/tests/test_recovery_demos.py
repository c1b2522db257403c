"""Recovery demonstrations: the expert takes over from a state a driver left, and is recorded."""

import json
import os

from humanoid_vla.actions import ActionSpec
from humanoid_vla.checkpoint import save_untrained_checkpoint
from humanoid_vla.data import EpisodeReader, EpisodeWriter, validate_file
from humanoid_vla.data.dataset import EpisodeDataset, FIRST_SEGMENT_ATTRIBUTE
from humanoid_vla.evaluation import recovery_demos
from humanoid_vla.evaluation.recovery_demos import record_recovery, RecoveryEpisode, summarize
from humanoid_vla.sim.gl import select_gl_backend
from humanoid_vla.sim.tasks import sample_task
import numpy as np
import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
GL_BACKEND = select_gl_backend()
pytest.importorskip('mujoco', reason='MuJoCo is not installed (see requirements.txt)')
pytest.importorskip('mink', reason='mink is not installed (see requirements.txt)')
from humanoid_vla.sim.expert import PICK_PLACE, ScriptedExpert, take_over  # noqa: E402,I100

needs_rendering = pytest.mark.skipif(GL_BACKEND is None, reason='no offscreen OpenGL backend')
ON_PLATE_SEED, TOUCH_SEED = 10001, 10000
LIFT = [phase.name for phase in PICK_PLACE].index('lift')


def test_the_expert_takes_over_in_the_phase_the_world_allows(env):
    task = sample_task(TOUCH_SEED, 'touch')
    env.reset_task(task)
    expert = take_over(env.world, task, env.side)
    assert expert.index == 0 and expert.segments_done == 0
    assert np.allclose(expert.command_pos, env.world.hand_pose(env.side)[0])

    task = sample_task(ON_PLATE_SEED, 'pick_place')
    env.reset_task(task)
    assert take_over(env.world, task, env.side).index == 0  # nothing held: approach it
    env.world.attach(task.target, env.side)
    held = take_over(env.world, task, env.side)
    assert held.index == LIFT and held.segments_done == 1
    assert held.act()[7] == 1.0  # it keeps the target closed in the hand
    other = next(name for name in task.objects
                 if name not in (task.target, task.reference) and 'plate' not in name)
    env.reset_task(task)
    env.world.attach(other, env.side)
    assert take_over(env.world, task, env.side) is None


def drive_until(env, task, phase: str) -> None:
    """Run the scripted expert until it enters ``phase`` (the hand is then on its course)."""
    expert = ScriptedExpert(env.world, task, env.side)
    for _ in range(80):
        if expert.phases[expert.index].name == phase:
            return
        env.apply_action(expert.act())
    raise AssertionError(f'the expert never reached {phase!r}')


@pytest.mark.parametrize('family, seed, phase', [
    ('touch', TOUCH_SEED, 'descend'), ('pick_place', ON_PLATE_SEED, 'descend'),
    ('pick_place', ON_PLATE_SEED, 'lower')])
def test_a_hand_already_on_course_goes_straight_down(env, family, seed, phase):
    task = sample_task(seed, family)
    env.reset_task(task)
    drive_until(env, task, phase)
    expert = take_over(env.world, task, env.side)
    assert expert.phases[expert.index].name == phase
    assert expert.segments_done == (1 if phase == 'lower' else 0)


def expert_until_held(env, task):
    """Drive with the scripted expert itself (the episode is handed over mid-task)."""
    return ScriptedExpert(env.world, task, env.side).act


@needs_rendering
def test_a_handover_with_the_target_in_hand_records_the_carry_as_segment_one(env, tmp_path):
    task = sample_task(ON_PLATE_SEED, 'pick_place')
    path = tmp_path / 'recover.hdf5'
    with EpisodeWriter(path) as writer:
        # The expert drives 14 ticks (it has grasped and begun the lift), then starts over.
        episode = record_recovery(env, task, expert_until_held, 14, writer, substeps=1)
    assert episode.outcome == 'recorded' and episode.expert_success
    assert validate_file(path).ok
    with EpisodeReader(path) as reader:
        group = reader.demo_group('demo_0')
        actions = group['actions'][()]
        assert group.attrs[FIRST_SEGMENT_ATTRIBUTE] == 1
        assert group.attrs['language_instruction'] == task.instruction
        assert len(actions) == episode.recorded_steps == group['obs/head_rgb'].shape[0]
        assert group['obs/joint_states'].shape == (len(actions), 43)
    # The first frame carries the expert's first command, then each frame the one in effect.
    assert np.array_equal(actions[0], actions[1]) and actions[0, 7] == 1.0
    assert np.all(np.abs(np.diff(actions[:, :3], axis=0)) <= 0.04 + 1e-6)
    data = EpisodeDataset(path, split=None, image_size=16, action_offset=1, subgoal_dim=-1)
    assert data[0]['subgoal_segment'] == 1  # the place map, not the grasp map


@needs_rendering
def test_a_driver_that_finishes_the_touch_records_nothing(env, tmp_path):
    task = sample_task(TOUCH_SEED, 'touch')
    with EpisodeWriter(tmp_path / 'none.hdf5') as writer:
        episode = record_recovery(env, task, expert_until_held, 40, writer, substeps=1)
        assert writer.num_demos == 0
    assert episode.outcome in ('policy finished', 'touch decided')


@needs_rendering
def test_the_command_line_runs_a_checkpoint_and_hands_over(tmp_path, small_sim_config, capsys):
    spec = ActionSpec(('right_hand_pose', 'right_gripper'))
    checkpoint = save_untrained_checkpoint(tmp_path / 'ckpt', spec,
                                           small_sim_config(use_proprio=True, proprio_dim=43))
    assert recovery_demos.main([str(checkpoint), '--episodes', '2', '--seed-start', '70000',
                                '--substeps', '1', '--out', str(tmp_path / 'out'),
                                '--name', 'rec']) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index('{'):])
    families = summary['per_family']
    assert set(families) == {'touch', 'pick_place'} and summary['episodes'] == 2
    recorded = sum(family['recorded'] for family in families.values())
    assert validate_file(tmp_path / 'out' / 'rec.hdf5').ok
    with EpisodeReader(tmp_path / 'out' / 'rec.hdf5') as reader:
        assert len(reader.demo_names()) == recorded
        assert reader.sources['policy'] == str(checkpoint)


def test_the_summary_counts_recordings_and_skips_per_family():
    episodes = [RecoveryEpisode(1, 'touch', 3, 'recorded', True, 6),
                RecoveryEpisode(2, 'touch', 5, 'touch decided'),
                RecoveryEpisode(3, 'pick_place', 9, 'recorded', False, 81),
                RecoveryEpisode(4, 'pick_place', 9, 'holding another object')]
    summary = summarize(episodes)
    assert summary['episodes'] == 4
    assert summary['per_family']['touch'] == {'recorded': 1, 'expert_success': 1, 'frames': 6,
                                              'skipped': {'touch decided': 1}}
    assert summary['per_family']['pick_place'] == {
        'recorded': 1, 'expert_success': 0, 'frames': 81,
        'skipped': {'holding another object': 1}}
