"""The diagnosis tells a hand that left a right map 0 from one that followed a wrong one."""

import json
import os

from humanoid_vla.actions import ActionSpec
from humanoid_vla.checkpoint import save_untrained_checkpoint
from humanoid_vla.evaluation import diagnose
from humanoid_vla.evaluation.map_following import (FirstFrameMap, format_following,
                                                   summarize_following)
from humanoid_vla.evaluation.rollout import expert_actor
from humanoid_vla.evaluation.touch_diagnosis import run_touch_episode
from humanoid_vla.sim.gl import select_gl_backend
from humanoid_vla.sim.tasks import sample_task
import numpy as np
import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
GL_BACKEND = select_gl_backend()
needs_rendering = pytest.mark.skipif(GL_BACKEND is None, reason='no offscreen OpenGL backend')
TOUCH_SEED = 10000


def test_following_counts_map_hits_and_what_the_hand_did_after_them():
    summary = summarize_following(
        target=['red_cup', 'red_cup', 'blue_block', 'blue_block', 'green_plate'],
        mapped=['red_cup', 'red_cup', 'red_block', 'red_block', 'green_cup'],
        reached=[('red_cup',), ('red_bowl',), ('red_block',), ('blue_block',), ()],
        success=[True, False, False, True, False])
    assert summary == {'episodes': 5, 'on_target': 2, 'on_target_success': 1, 'off_target': 3,
                       'off_target_went_there': 1, 'off_target_success': 1}
    line = format_following(summary)
    assert 'on the target in 2 of 5 (success then 1)' in line and 'off it in 3' in line


def test_following_needs_one_entry_per_episode():
    with pytest.raises(ValueError, match='one entry per episode'):
        summarize_following(['red_cup'], ['red_cup', 'blue_cup'], [()], [True])


class PointsAt:
    """A grounding map 0 that peaks on one object of the scene, whatever the instruction."""

    def __init__(self, env, name: str) -> None:
        self.env = env
        self.name = name
        self.calls = 0

    def predict_grounding(self, observation):
        self.calls += 1
        position = self.env.world.object_pose(self.name)[0]
        return np.stack([self.env.world.camera_in_base().project(position), [0.0, 0.0]])


@needs_rendering
def test_map_0_is_read_once_in_the_episodes_first_frame(env):
    task = sample_task(TOUCH_SEED, 'touch')
    look_alike = next(name for name in task.objects if name != task.target)
    policy = PointsAt(env, look_alike)
    first_frame = FirstFrameMap(policy, expert_actor)
    episode = run_touch_episode(env, task, first_frame, substeps=5)
    # Read after the reset: the objects it names are this scene's.
    assert first_frame.nearest == look_alike and policy.calls == 1
    look_alike_xy = env.world.object_pose(look_alike)[0][:2]
    assert np.hypot(*(first_frame.point[:2] - look_alike_xy)) < 0.03
    # The wrapped factory still acts: the expert touches the named object.
    assert episode.outcome == 'success'


@needs_rendering
def test_the_command_line_says_where_map_0_pointed(tmp_path, capsys, small_sim_config):
    spec = ActionSpec(('right_hand_pose', 'right_gripper'))
    config = small_sim_config(use_proprio=True, proprio_dim=43, pooling='readout',
                              language_film=True, grounding_maps=2)
    checkpoint = save_untrained_checkpoint(tmp_path / 'ckpt', spec, config)
    out = tmp_path / 'touch.json'
    assert diagnose.main([str(checkpoint), '--family', 'touch', '--episodes', '1',
                          '--seed-start', str(TOUCH_SEED), '--max-steps', '2',
                          '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'map 0 at first on' in printed and 'map 0 at the first frame:' in printed
    written = json.loads(out.read_text())
    assert written['summary']['map0']['episodes'] == 1
    assert written['episodes'][0]['map0_object'] in sample_task(TOUCH_SEED, 'touch').objects
    # Where map 0 pointed, measured from the expert's touch spot (planned at the reset).
    episode = written['episodes'][0]
    assert len(episode['expert_spot']) == 2
    assert 0.0 <= episode['map0_spot_offset_m'] < 1.0
