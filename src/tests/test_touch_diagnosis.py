"""The touch diagnosis tells a look-alike touched first from a neighbour brushed on the way."""

import dataclasses
import json
import os

from humanoid_vla.evaluation import diagnose
from humanoid_vla.evaluation.rollout import expert_actor
from humanoid_vla.evaluation.touch_diagnosis import (classify_touch, format_touch_summary,
                                                     nearest_hand_part, run_touch_episode,
                                                     summarize_touches, TOUCH_OUTCOMES,
                                                     TouchDiagnosis)
from humanoid_vla.sim.gl import select_gl_backend
from humanoid_vla.sim.tasks import sample_task, TaskSpec, TOUCH_DISTANCE
import numpy as np
import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
GL_BACKEND = select_gl_backend()
pytest.importorskip('mujoco', reason='MuJoCo is not installed (see requirements.txt)')
pytest.importorskip('mink', reason='mink is not installed (see requirements.txt)')

needs_rendering = pytest.mark.skipif(GL_BACKEND is None, reason='no offscreen OpenGL backend')
# The red block is named; the others share its colour, its shape, or neither.
RED_BLOCK = TaskSpec('touch', 'red_block', None, 'touch the red block', 7,
                     ('red_block', 'red_cup', 'blue_block', 'green_plate'))


def test_outcomes_say_what_the_first_touch_shared_with_the_target():
    assert classify_touch('red_block', {'red_block'}) == 'success'
    assert classify_touch('red_block', {'red_block', 'red_cup'}) == 'success'
    assert classify_touch('red_block', set()) == 'never_touched'
    assert classify_touch('red_block', {'red_cup'}) == 'same_colour_first'
    assert classify_touch('red_block', {'blue_block'}) == 'same_shape_first'
    assert classify_touch('red_block', {'green_plate'}) == 'other_first'
    assert classify_touch('red_block', {'green_plate', 'blue_block'}) == 'same_shape_first'


def test_summary_counts_outcomes_and_the_hand_offset_per_outcome():
    episodes = [TouchDiagnosis(1, 'i', 'red_block', 'success', 8, ('red_block',), 8, 0.01),
                TouchDiagnosis(2, 'i', 'red_block', 'success', 9, ('red_block',), 9, 0.03),
                TouchDiagnosis(3, 'i', 'red_block', 'never_touched', 40, (), None, 0.2)]
    summary = summarize_touches(episodes)
    assert summary['outcomes'] == {**dict.fromkeys(TOUCH_OUTCOMES, 0), 'success': 2,
                                   'never_touched': 1}
    assert summary['target_offset_cm_median'] == {'success': 2.0, 'never_touched': 20.0}
    assert summary['spot_offset_cm_median'] == {}  # no episode says where the spot was
    text = format_touch_summary('x', summary)
    assert 'x: 3 touch episodes' in text and 'never_touched 1' in text


def test_summary_gives_the_offset_from_the_expert_s_spot_per_outcome():
    episodes = [TouchDiagnosis(1, 'i', 'red_block', 'success', spot_offset_m=0.01),
                TouchDiagnosis(2, 'i', 'red_block', 'success', spot_offset_m=0.02),
                TouchDiagnosis(3, 'i', 'red_block', 'other_first', spot_offset_m=0.07),
                TouchDiagnosis(4, 'i', 'red_block', 'other_first', spot_offset_m=None)]
    summary = summarize_touches(episodes)
    assert summary['spot_offset_cm_median'] == {'success': 1.5, 'other_first': 7.0}
    assert "expert's touch spot, median cm: success 1.5, other_first 7.0" in \
        format_touch_summary('x', summary)
    assert "map 0's first-frame point" not in format_touch_summary('x', summary)


def test_summary_gives_map_0_s_offset_from_the_expert_s_spot_per_outcome():
    episodes = [TouchDiagnosis(1, 'i', 'red_block', 'success', map0_spot_offset_m=0.02),
                TouchDiagnosis(2, 'i', 'red_block', 'other_first', map0_spot_offset_m=0.06)]
    summary = summarize_touches(episodes)
    assert summary['map0_spot_offset_cm_median'] == {'success': 2.0, 'other_first': 6.0}
    assert ("map 0's first-frame point to the expert's touch spot, median cm: success 2.0, "
            'other_first 6.0') in format_touch_summary('x', summary)


def hand_bodies(env) -> set[str]:
    model = env.world.model
    return {model.body(int(model.geom_bodyid[g])).name for g in env.world.hand_geoms(env.side)}


@needs_rendering
def test_the_nearest_hand_part_is_a_hand_body_at_the_hand_s_distance(env):
    env.reset_task(RED_BLOCK)
    for name in RED_BLOCK.objects:
        part, distance = nearest_hand_part(env.world, name, env.side)
        assert part in hand_bodies(env)
        assert distance == pytest.approx(env.world.hand_object_distance(name, env.side))


@needs_rendering
def test_the_expert_touches_the_named_object_first_over_it(env):
    episode = run_touch_episode(env, RED_BLOCK, expert_actor)
    assert episode.outcome == 'success', episode
    assert 'red_block' in episode.first_touched
    assert episode.first_touch_step == episode.steps
    part, distance = episode.first_touch_parts['red_block']
    assert part in hand_bodies(env) and distance <= TOUCH_DISTANCE
    assert episode.target_offset_m < 0.05  # a block's radius is 3.4 cm
    assert episode.spot_offset_m < 0.02  # it comes down over the spot it planned


@needs_rendering
@pytest.mark.parametrize('neighbour, outcome', [('red_cup', 'same_colour_first'),
                                                ('blue_block', 'same_shape_first'),
                                                ('green_plate', 'other_first')])
def test_a_hand_that_goes_for_a_neighbour_is_sorted_by_what_it_shares(env, neighbour, outcome):
    def touches_the_neighbour(env_, task_):
        return expert_actor(env_, dataclasses.replace(task_, target=neighbour))
    episode = run_touch_episode(env, RED_BLOCK, touches_the_neighbour)
    assert episode.outcome == outcome, episode
    assert episode.first_touched == (neighbour,)
    assert list(episode.first_touch_parts) == [neighbour]
    assert episode.steps == 40  # never a success: the budget ran out
    assert episode.target_offset_m > 0.05
    assert episode.spot_offset_m > 0.05  # the named object's spot, not the neighbour's


@needs_rendering
def test_a_hand_that_stays_where_it_is_touched_nothing(env):
    def stays(env_, task_):
        home = np.concatenate([*env_.world.hand_pose(env_.side), [0.0]])  # after the reset
        return lambda: home
    episode = run_touch_episode(env, RED_BLOCK, stays, max_steps=3)
    assert episode.outcome == 'never_touched'
    assert episode.first_touch_step is None and episode.steps == 3
    assert episode.first_touch_parts == {}
    assert episode.target_offset_m > 0.0


@needs_rendering
def test_the_command_line_diagnoses_touches(tmp_path, capsys):
    out = tmp_path / 'touch.json'
    assert diagnose.main(['--expert', '--family', 'touch', '--episodes', '2',
                          '--seed-start', '10000', '--seed-step', '2', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'seed 10000' in printed and 'seed 10002' in printed and '2 touch episodes' in printed
    written = json.loads(out.read_text())
    assert written['family'] == 'touch'
    assert [e['seed'] for e in written['episodes']] == [10000, 10002]
    assert [e['instruction'] for e in written['episodes']] == [
        sample_task(seed, 'touch').instruction for seed in (10000, 10002)]
    assert written['summary']['outcomes']['success'] == 2
    assert "cm from the expert's spot" in printed
    assert all(e['spot_offset_m'] < 0.02 for e in written['episodes'])
