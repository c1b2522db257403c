"""vla-sim-annotate-peers rebuilds each recorded scene from its seed and stores the look-alikes."""

import json
import os

import h5py
from humanoid_vla.data import EpisodeWriter
from humanoid_vla.sim.catalog import split_name
from humanoid_vla.sim.scene_peers import annotate, demo_order, main, peer_positions, \
    PEERS_ATTRIBUTE
from humanoid_vla.sim.tasks import FAMILIES, sample_task
import numpy as np
import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')  # before the env fixture imports mujoco

SEED_START = 4200


def test_peers_are_the_objects_sharing_the_targets_colour_or_shape():
    task = next(task for task in (sample_task(seed, 'touch') for seed in range(100))
                if len({split_name(name)[0] for name in task.objects}) < len(task.objects))
    positions = {name: np.array([index, 0.0, 0.0]) for index, name in
                 enumerate(task.objects)}
    peers = peer_positions(task, positions)
    colour, shape = split_name(task.target)
    expected_colour = [positions[n][0] for n in task.objects if split_name(n)[0] == colour]
    expected_shape = [positions[n][0] for n in task.objects if split_name(n)[1] == shape]
    assert [p[0] for p in peers['colour']] == expected_colour
    assert [p[0] for p in peers['shape']] == expected_shape
    assert positions[task.target].tolist() in peers['colour']
    assert positions[task.target].tolist() in peers['shape']


def test_demos_are_taken_in_recording_order():
    assert demo_order(['demo_10', 'demo_2', 'demo_0']) == ['demo_0', 'demo_2', 'demo_10']
    with pytest.raises(ValueError, match='seed is unknown'):
        demo_order(['demo_0', 'take_1'])


def write_recording(path, seeds, families=FAMILIES):
    """Write one short episode per seed, with the instruction vla-sim-record would use."""
    with EpisodeWriter(path) as writer:
        for index, seed in enumerate(seeds):
            writer.begin_episode(sample_task(seed, families[index % len(families)]).instruction)
            writer.add_step({'head_rgb': np.zeros((8, 8, 3), np.uint8)},
                            np.zeros(8, np.float32), 0.0)
            writer.end_episode(True)
    return path


def test_annotation_stores_where_the_rebuilt_scene_puts_the_peers(env, tmp_path):
    seeds = range(SEED_START, SEED_START + 3)
    path = write_recording(tmp_path / 'demos.hdf5', seeds)
    assert annotate(str(path), SEED_START, world=env.world) == 3
    with h5py.File(path, 'r') as handle:
        stored = [json.loads(handle['data'][name].attrs[PEERS_ATTRIBUTE])
                  for name in demo_order(list(handle['data']))]
    for index, (seed, peers) in enumerate(zip(seeds, stored)):
        task = sample_task(seed, FAMILIES[index % 2])
        env.reset_task(task)
        env.world.settle()
        target = env.world.object_pose(task.target)[0]
        for group in ('colour', 'shape'):
            nearest = min(np.linalg.norm(np.array(p) - target) for p in peers[group])
            assert nearest < 1e-3, (seed, group)
        sharing = [n for n in task.objects if split_name(n)[0] == split_name(task.target)[0]]
        assert len(peers['colour']) == len(sharing)


def test_a_recording_of_other_seeds_is_refused_and_left_unchanged(env, tmp_path):
    path = write_recording(tmp_path / 'demos.hdf5', range(SEED_START, SEED_START + 2))
    with pytest.raises(ValueError, match='wrong --seed-start'):
        annotate(str(path), SEED_START + 1, world=env.world)
    with h5py.File(path, 'r') as handle:
        assert not any(PEERS_ATTRIBUTE in handle['data'][name].attrs for name in handle['data'])
    with pytest.raises(SystemExit, match='one --seed-start per file'):
        main([str(path), '--seed-start', '1', '2'])
