"""The grounding probe names each object of a real scene in turn and scores where answers land."""

import dataclasses
import os

from humanoid_vla.actions import ActionSpec
from humanoid_vla.checkpoint import save_untrained_checkpoint
from humanoid_vla.evaluation.grounding import (format_summary, mass_near, named_candidates,
                                               nearest_object, peer_groups_of, probe, reworded)
from humanoid_vla.policies.base import Observation
from humanoid_vla.sim.catalog import split_name, words
from humanoid_vla.sim.gl import select_gl_backend
from humanoid_vla.sim.tasks import sample_task
import numpy as np
import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
GL_BACKEND = select_gl_backend()
pytest.importorskip('mujoco', reason='MuJoCo is not installed (see requirements.txt)')
pytest.importorskip('mink', reason='mink is not installed (see requirements.txt)')
from humanoid_vla.policies.custom import CustomVLAPolicy  # noqa: E402,I100

SEEDS = range(10000, 10006)


# The probe renders every scene: the `env` fixture (conftest.py) needs an offscreen GL backend.
needs_rendering = pytest.mark.skipif(GL_BACKEND is None, reason='no offscreen OpenGL backend')


class ReadsTheInstruction:
    """Answers with the centre of the object the instruction names (looked up in the world)."""

    def __init__(self, env) -> None:
        self.env = env

    def predict_subgoal(self, observation):
        named = [name for name in self.env.world.object_names()
                 if words(name) in observation.instruction]
        # The place reference is named after the target in pick-and-place instructions.
        first = min(named, key=lambda name: observation.instruction.index(words(name)))
        return np.concatenate([self.env.world.object_pose(first)[0], [0, 0, 0, 1, 0]])


class SeesTheNamedObject(ReadsTheInstruction):
    """Answers through a grounding map that peaks where the named object is in the image."""

    def predict_grounding(self, observation):
        subgoal = self.predict_subgoal(observation)
        camera = self.env.world.camera_in_base()
        return np.stack([camera.project(subgoal[:3]), [0.0, 0.0]])

    def predict(self, observation):
        raise AssertionError('the probe should read the map, not the actions')


class ReachesForThePlaceReference(ReadsTheInstruction):
    """Answers with the place reference of a pick-and-place (the named object for touch)."""

    def predict_subgoal(self, observation):
        reference = self.env.task.reference
        if reference is None:
            return super().predict_subgoal(observation)
        return np.concatenate([self.env.world.object_pose(reference)[0], [0, 0, 0, 1, 0]])


class IgnoresTheInstruction(ReadsTheInstruction):
    """Answers with the centre of the scene's first object whatever is named."""

    def predict_subgoal(self, observation):
        first = self.env.world.object_names()[0]
        return np.concatenate([self.env.world.object_pose(first)[0], [0, 0, 0, 1, 0]])


class TakesTheColourLookAlike(ReadsTheInstruction):
    """Answers with another object of the named colour where the scene has one."""

    def predict_subgoal(self, observation):
        named = super().predict_subgoal(observation)
        target = min((name for name in self.env.world.object_names()
                      if words(name) in observation.instruction),
                     key=lambda name: observation.instruction.index(words(name)))
        look_alikes = [name for name in self.env.world.object_names()
                       if name != target and split_name(name)[0] == split_name(target)[0]]
        if not look_alikes:
            return named
        return np.concatenate([self.env.world.object_pose(look_alikes[0])[0], [0, 0, 0, 1, 0]])


class PeerMapsPreferLookAlikes(SeesTheNamedObject):
    """Colour map on the other objects of the named colour, shape map on the named object."""

    side = 14

    def predict_grounding_maps(self, observation):
        named = self.predict_subgoal(observation)[:3]
        camera = self.env.world.camera_in_base()
        maps = np.zeros((4, self.side, self.side))
        target = min(self.env.world.object_names(), key=lambda name: np.linalg.norm(
            self.env.world.object_pose(name)[0] - named))
        for name in self.env.world.object_names():
            u, v = camera.project(self.env.world.object_pose(name)[0])
            cell = (int((v + 1) / 2 * self.side), int((u + 1) / 2 * self.side))
            if name == target:
                maps[3][cell] = 1.0
            elif split_name(name)[0] == split_name(target)[0]:
                maps[2][cell] += 1.0
        maps[2] /= max(maps[2].sum(), 1.0)
        return maps


class PeerMapsMissTheNamedObject(PeerMapsPreferLookAlikes):
    """Colour and shape maps each spread over the named object's look-alikes, never on it."""

    def predict_grounding_maps(self, observation):
        maps = super().predict_grounding_maps(observation)
        named = self.predict_subgoal(observation)[:3]
        target = min(self.env.world.object_names(), key=lambda name: np.linalg.norm(
            self.env.world.object_pose(name)[0] - named))
        camera = self.env.world.camera_in_base()
        maps[3] = 0.0
        for name in self.env.world.object_names():
            if name != target and split_name(name)[1] == split_name(target)[1]:
                u, v = camera.project(self.env.world.object_pose(name)[0])
                maps[3][int((v + 1) / 2 * self.side), int((u + 1) / 2 * self.side)] += 1.0
        maps[3] /= max(maps[3].sum(), 1.0)
        return maps


def test_mass_near_counts_the_cells_within_the_radius():
    probabilities = np.zeros((4, 4))
    probabilities[1, 2] = 0.5  # centre (0.25, -0.25)
    probabilities[1, 3] = 0.25  # one cell to the right
    probabilities[3, 0] = 0.25  # far away
    assert mass_near(probabilities, np.array([0.25, -0.25])) == pytest.approx(0.75)
    assert mass_near(probabilities, np.array([0.25, -0.25]), radius_cells=0.5) == 0.5
    assert mass_near(probabilities, np.array([-0.75, 0.75])) == pytest.approx(0.25)


def test_peer_groups_come_from_the_checkpoints_training_config(tmp_path):
    assert peer_groups_of(str(tmp_path)) == []
    (tmp_path / 'training_args.json').write_text(
        '{"config": {"grounding_peer_groups": ["colour", "shape"]}}')
    assert peer_groups_of(str(tmp_path)) == ['colour', 'shape']


def test_candidates_leave_out_the_place_reference_and_what_cannot_be_picked():
    touch = sample_task(10000, 'touch')
    assert named_candidates(touch) == list(touch.objects)
    pick = sample_task(10000, 'pick_place')
    candidates = named_candidates(pick)
    assert pick.target in candidates and pick.reference not in candidates
    assert all(split_name(name)[1] != 'plate' for name in candidates)


def test_rewording_names_another_object_and_keeps_the_reference():
    task = next(task for task in (sample_task(seed, 'pick_place') for seed in SEEDS)
                if len(named_candidates(task)) > 1)
    other = next(name for name in named_candidates(task) if name != task.target)
    text = reworded(task, other)
    assert words(other) in text and words(task.reference) in text
    assert text.replace(words(other), words(task.target), 1) == task.instruction
    with pytest.raises(ValueError, match='does not name'):
        reworded(dataclasses.replace(task, instruction='wave'), other)


def test_nearest_object_uses_the_table_plane():
    positions = {'a': np.array([0.0, 0.0, 0.0]), 'b': np.array([0.1, 0.0, 0.5])}
    assert nearest_object(np.array([0.09, 0.0, 0.0]), positions) == 'b'


@needs_rendering
def test_a_policy_that_reads_the_instruction_hits_every_query(env):
    summary = probe(ReadsTheInstruction(env), env, SEEDS).summary()
    assert summary['all']['hits'] == summary['all']['queries'] > len(SEEDS) * 2
    assert summary['all']['median_error_m'] < 1e-3
    assert 'touch' in format_summary('oracle', summary)


@needs_rendering
def test_held_out_pairs_get_their_own_row_with_look_alike_misses(env):
    seeds = range(20000, 20006)
    oracle = probe(ReadsTheInstruction(env), env, seeds, ('touch',), split='novel').summary()
    held_out = oracle['held_out']
    assert held_out['hits'] == held_out['queries'] > 0 and held_out['same_colour'] == 0
    assert 0.0 < held_out['chance'] < 1.0
    assert 'the named colour 0' in format_summary('oracle', oracle)
    confused = probe(TakesTheColourLookAlike(env), env, seeds, ('touch',),
                     split='novel').summary()['held_out']
    assert confused['queries'] == held_out['queries']
    assert confused['same_colour'] > 0 and confused['same_shape'] == 0
    assert confused['hits'] + confused['same_colour'] == confused['queries']
    assert 'held_out' not in probe(ReadsTheInstruction(env), env, SEEDS[:2],
                                   ('touch',)).summary()


@needs_rendering
def test_answers_at_the_place_reference_are_counted_as_such(env):
    summary = probe(ReachesForThePlaceReference(env), env, SEEDS).summary()
    pick = summary['pick_place']
    assert pick['hits'] == 0 and pick['to_reference'] == pick['queries'] > 0
    assert summary['touch']['hit_rate'] == 1.0 and summary['touch']['to_reference'] == 0
    assert 'nearest the place reference' in format_summary('confused', summary)


@needs_rendering
def test_a_policy_that_ignores_the_instruction_stays_at_or_below_chance(env):
    summary = probe(IgnoresTheInstruction(env), env, SEEDS).summary()
    assert summary['all']['hits'] <= len(SEEDS) * 2
    assert summary['all']['hit_rate'] <= summary['all']['chance'] < 0.5


@needs_rendering
def test_a_grounding_map_is_read_on_the_named_objects_height(env):
    summary = probe(SeesTheNamedObject(env), env, SEEDS[:3], answer='map').summary()
    assert summary['all']['hits'] == summary['all']['queries'] > 6
    assert summary['all']['median_error_m'] < 1e-6
    # Without the map the same policy is read through its subgoal; without either, it fails.
    assert probe(SeesTheNamedObject(env), env, SEEDS[:1],
                 answer='subgoal').summary()['all']['hit_rate'] == 1.0
    with pytest.raises(ValueError, match='grounding maps'):
        probe(ReadsTheInstruction(env), env, SEEDS[:1], answer='map')
    with pytest.raises(ValueError, match='answer must be one of'):
        probe(ReadsTheInstruction(env), env, SEEDS[:1], answer='guess')


@needs_rendering
def test_a_checkpoint_is_probed_through_its_subgoal_head(env, tmp_path, small_sim_config):
    spec = ActionSpec(('right_hand_pose', 'right_gripper'))
    config = small_sim_config(use_proprio=True, proprio_dim=43, pooling='readout',
                              language_film=True, film_pooling='attention', spatial_keypoints=2,
                              subgoal_loss_weight=1.0)
    policy = CustomVLAPolicy(save_untrained_checkpoint(tmp_path / 'ckpt', spec, config))
    summary = probe(policy, env, SEEDS[:2], families=('touch',)).summary()
    assert summary['touch']['queries'] == 8 and summary['all']['median_error_m'] > 0.0
    env.reset_task(sample_task(SEEDS[0], 'touch'))
    seen = env.observe()
    observation = Observation(seen['image'], 'touch the red cup', seen['joint_positions'])
    subgoal = policy.predict_subgoal(observation)
    assert subgoal.shape == (spec.dim,) and np.all(np.isfinite(subgoal))
    plain = CustomVLAPolicy(
        save_untrained_checkpoint(tmp_path / 'plain', spec, small_sim_config()))
    assert plain.predict_subgoal(Observation(seen['image'], 'touch the red cup')) is None


@needs_rendering
def test_a_checkpoint_with_grounding_maps_is_probed_through_its_first_map(
        env, tmp_path, small_sim_config):
    spec = ActionSpec(('right_hand_pose', 'right_gripper'))
    config = small_sim_config(pooling='readout', language_film=True, grounding_maps=2)
    policy = CustomVLAPolicy(save_untrained_checkpoint(tmp_path / 'ckpt', spec, config))
    summary = probe(policy, env, SEEDS[:2], families=('touch',)).summary()
    assert summary['touch']['queries'] == 8 and summary['all']['median_error_m'] > 0.0
    env.reset_task(sample_task(SEEDS[0], 'touch'))
    grounding = policy.predict_grounding(Observation(env.observe()['image'], 'touch the cup'))
    assert grounding.shape == (2, 2) and np.all(np.abs(grounding) <= 1.0)
    maps = policy.predict_grounding_maps(Observation(env.observe()['image'], 'touch the cup'))
    assert maps.shape == (2, 4, 4) and np.allclose(maps.sum(axis=(1, 2)), 1.0)
    plain = CustomVLAPolicy(
        save_untrained_checkpoint(tmp_path / 'plain', spec, small_sim_config()))
    assert plain.predict_grounding(Observation(env.observe()['image'], 'touch the cup')) is None


@needs_rendering
def test_peer_maps_are_measured_on_the_named_object_and_its_look_alikes(env):
    seeds = range(20000, 20008)
    summary = probe(PeerMapsPreferLookAlikes(env), env, seeds, ('touch',), split='novel',
                    peer_groups=['colour', 'shape']).summary()
    peer_maps = summary['peer_maps']
    assert {'trained colour', 'trained shape', 'held_out colour'} <= set(peer_maps)
    colour, shape = peer_maps['trained colour'], peer_maps['trained shape']
    assert colour['queries'] > 0 and colour['target'] < 0.1 < colour['others']
    assert shape['target'] > 0.9 and shape['others'] < 0.1
    assert 'peer map colour held-out pairs: median mass' in format_summary('s', summary)
    # Together the maps still single out the named object: only the shape map has mass there,
    # and no look-alike has mass in both.
    together = summary['peer_and']['trained']
    assert together['queries'] > 0 and together['hits'] >= 0.9 * together['queries']
    assert 'peer maps together, held-out pairs: pick the named object in' in format_summary(
        's', summary)
    missing = probe(PeerMapsMissTheNamedObject(env), env, seeds, ('touch',), split='novel',
                    peer_groups=['colour', 'shape']).summary()['peer_and']['trained']
    assert missing['hits'] <= 0.1 * missing['queries']
    assert 'peer_maps' not in probe(PeerMapsPreferLookAlikes(env), env, seeds[:1],
                                    ('touch',)).summary()
    with pytest.raises(ValueError, match='not among'):
        probe(PeerMapsPreferLookAlikes(env), env, seeds[:1], peer_groups=['size'])
