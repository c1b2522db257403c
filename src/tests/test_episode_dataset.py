"""The torch EpisodeDataset: items, action chunks, splits and multi-worker loading."""

import pickle

from humanoid_vla.camera_projection import ImageCrop
from humanoid_vla.data import consolidate, EpisodeReader, EpisodeReadError, EpisodeWriter
import humanoid_vla.data.dataset as dataset_module
from humanoid_vla.data.dataset import EpisodeDataset
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

LENGTHS = [5, 3, 8, 4, 6]


def _frame(episode, step):
    """Return a frame whose left half encodes the episode and right half the step."""
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[:, :15] = 10 * episode
    frame[:, 15:] = 10 * step
    return frame


def _action(episode, step):
    return np.array([episode, step, episode * 100 + step], np.float32)


@pytest.fixture(scope='module')
def dataset_path(tmp_path_factory):
    path = tmp_path_factory.mktemp('episodes') / 'ds.hdf5'
    with EpisodeWriter(path, valid_fraction=0.4) as writer:
        for episode, length in enumerate(LENGTHS):
            writer.begin_episode(f'task {episode}')
            for step in range(length):
                writer.add_step({'wrist_rgb': _frame(episode, step),
                                 'front_rgb': _frame(episode, step)[::2, ::2].copy(),
                                 'joint_states': np.full(4, step, np.float32)},
                                _action(episode, step), 0.1 * step)
            writer.end_episode(True)
    return path


def _episode_of(item):
    return int(item['actions'][0, 0])


def test_items_have_the_documented_shapes(dataset_path):
    data = EpisodeDataset(dataset_path, split=None, image_size=32, chunk_size=4,
                          proprio_key='joint_states')
    assert len(data) == sum(LENGTHS) and data.num_episodes == 5
    assert data.image_key == 'front_rgb'  # the first *_rgb key, alphabetically
    item = data[0]
    assert item['image'].shape == (3, 32, 32) and item['image'].dtype == torch.float32
    assert 0.0 <= item['image'].min() and item['image'].max() <= 1.0
    assert item['instruction'] == 'task 0'
    assert item['actions'].shape == (4, 3) and item['actions'].dtype == torch.float32
    assert item['action_mask'].dtype == torch.bool
    assert item['proprio'].shape == (4,) and item['proprio'].dtype == torch.float32
    assert data.all_actions().shape == (sum(LENGTHS), 3)
    assert data.instructions() == [f'task {i}' for i in range(5)]
    assert data[-1]['instruction'] == 'task 4'
    with pytest.raises(IndexError):
        data[len(data)]


def test_native_resolution_and_pixel_values(dataset_path):
    data = EpisodeDataset(dataset_path, split=None, image_key='wrist_rgb', image_size=None)
    index = LENGTHS[0] + 2  # episode 1, step 2
    image = data[index]['image']
    assert image.shape == (3, 20, 30)
    expected = torch.from_numpy(_frame(1, 2)).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(image, expected)


def test_an_image_crop_keeps_only_its_window_of_each_frame(dataset_path):
    right_half = ImageCrop(0.5, 0.0, 1.0, 1.0)  # the half of _frame that encodes the step
    index = LENGTHS[0] + 2  # episode 1, step 2
    native = EpisodeDataset(dataset_path, split=None, image_key='wrist_rgb', image_size=None,
                            image_crop=right_half)[index]['image']
    assert native.shape == (3, 20, 15)
    torch.testing.assert_close(native, torch.full((3, 20, 15), 20 / 255))
    cached = EpisodeDataset(dataset_path, split=None, image_key='wrist_rgb', image_size=8,
                            image_crop=right_half, cache_frames=True)
    torch.testing.assert_close(cached[index]['image'], torch.full((3, 8, 8), 20 / 255))


def test_action_chunks_pad_past_the_end_and_mask_the_padding(dataset_path):
    data = EpisodeDataset(dataset_path, split=None, chunk_size=4, image_size=8)
    start = LENGTHS[0]  # episode 1 has 3 steps
    first, last = data[start], data[start + 2]
    np.testing.assert_array_equal(first['actions'].numpy(),
                                  [_action(1, 0), _action(1, 1), _action(1, 2), _action(1, 2)])
    assert first['action_mask'].tolist() == [True, True, True, False]
    np.testing.assert_array_equal(last['actions'].numpy(), [_action(1, 2)] * 4)
    assert last['action_mask'].tolist() == [True, False, False, False]


def test_action_offset_pairs_each_frame_with_the_following_actions(dataset_path):
    data = EpisodeDataset(dataset_path, split=None, chunk_size=2, image_size=8, action_offset=1)
    start = LENGTHS[0]  # episode 1 has 3 steps
    first, last = data[start], data[start + 2]
    np.testing.assert_array_equal(first['actions'].numpy(), [_action(1, 1), _action(1, 2)])
    assert first['action_mask'].tolist() == [True, True]
    assert last['action_mask'].tolist() == [False, False]  # nothing follows the last frame
    assert _episode_of(first) == 1 and len(data) == sum(LENGTHS)
    with pytest.raises(ValueError, match='action_offset'):
        EpisodeDataset(dataset_path, action_offset=-1)


def test_segment_end_steps_marks_where_each_run_of_equal_values_ends():
    gripper = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.4, 0.0])
    assert dataset_module.segment_end_steps(gripper).tolist() == [2, 2, 2, 4, 4, 5, 6]
    assert dataset_module.segment_end_steps(np.zeros(3)).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match='non-empty 1-D'):
        dataset_module.segment_end_steps(np.zeros((2, 2)))


def test_segment_indices_count_the_changes_so_far():
    gripper = np.array([0, 0, 1, 1, 0, 0, 0])
    assert dataset_module.segment_indices(gripper).tolist() == [0, 0, 1, 1, 2, 2, 2]
    assert dataset_module.segment_indices(np.ones(3)).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match='non-empty 1-D'):
        dataset_module.segment_indices(np.zeros(0))


def write_gripper_episode(path, gripper, attributes=None):
    """Write one episode whose actions are (step, gripper command): segments end at changes."""
    with EpisodeWriter(path) as writer:
        writer.begin_episode('pick it up')
        for step, grip in enumerate(gripper):
            writer.add_step({'front_rgb': _frame(0, step)},
                            np.array([step, grip], np.float32), 0.1 * step)
        writer.end_episode(True, attributes)
    return path


def test_subgoal_is_the_action_ending_the_segment_of_the_first_action(tmp_path):
    gripper = [0, 0, 0, 1, 1, 0]
    path = write_gripper_episode(tmp_path / 'segments.hdf5', gripper)
    data = EpisodeDataset(path, split=None, image_size=8, action_offset=1, subgoal_dim=-1)
    subgoal_steps = [int(data[step]['subgoal'][0]) for step in range(len(gripper))]
    # Frame 0's first action is step 1, whose segment (gripper 0) ends at step 2, and so on.
    assert subgoal_steps == [2, 2, 4, 4, 5, 5]
    # ... and the segment index counts the gripper changes before that first action.
    assert [data[step]['subgoal_segment'] for step in range(len(gripper))] == [0, 0, 1, 1, 2, 2]
    assert 'subgoal' not in EpisodeDataset(path, split=None, image_size=8)[0]
    with pytest.raises(EpisodeReadError, match='subgoal_dim 2'):
        EpisodeDataset(path, split=None, image_size=8, subgoal_dim=2)


def test_segment_subgoals_hold_every_segment_end_and_mark_those_still_ahead(tmp_path):
    gripper = [0, 0, 0, 1, 1, 0]  # segments end at steps 2, 4 and 5
    path = write_gripper_episode(tmp_path / 'segments.hdf5', gripper)
    data = EpisodeDataset(path, split=None, image_size=8, action_offset=1, subgoal_dim=-1,
                          segment_subgoals=4)
    items = [data[step] for step in range(len(gripper))]
    # Every item holds the same segment ends; the fourth segment does not exist (zeros).
    assert all(item['segment_subgoals'][:, 0].tolist() == [2, 4, 5, 0] for item in items)
    assert all(item['segment_subgoals'].dtype == torch.float32 for item in items)
    # Frame 0 heads for segment 0: all three are ahead; frame 2's first action is in segment 1.
    masks = [item['segment_subgoal_mask'].tolist() for item in items]
    assert masks[0] == masks[1] == [True, True, True, False]
    assert masks[2] == masks[3] == [False, True, True, False]
    assert masks[4] == masks[5] == [False, False, True, False]
    assert 'segment_subgoals' not in EpisodeDataset(path, split=None, image_size=8,
                                                    subgoal_dim=-1)[0]
    with pytest.raises(ValueError, match='needs subgoal_dim'):
        EpisodeDataset(path, split=None, image_size=8, segment_subgoals=2)


def test_an_episode_starting_in_a_later_segment_counts_its_segments_from_there(tmp_path):
    # A recovery demonstration that starts with the target in hand: carry, release, open.
    gripper = [1, 1, 1, 0.4, 0]
    path = write_gripper_episode(tmp_path / 'held.hdf5', gripper,
                                 {dataset_module.FIRST_SEGMENT_ATTRIBUTE: 1})
    data = EpisodeDataset(path, split=None, image_size=8, action_offset=1, subgoal_dim=-1,
                          segment_subgoals=3)
    items = [data[step] for step in range(len(gripper))]
    assert [item['subgoal_segment'] for item in items] == [1, 1, 2, 3, 3]
    assert [int(item['subgoal'][0]) for item in items] == [2, 2, 3, 4, 4]
    # Segment 0 (the grasp) is not in the episode: no subgoal for map 0, the carry's in row 1.
    assert items[0]['segment_subgoals'][:, 0].tolist() == [0, 2, 3]
    assert items[0]['segment_subgoal_mask'].tolist() == [False, True, True]
    assert items[2]['segment_subgoal_mask'].tolist() == [False, False, True]


def test_split_follows_the_masks(dataset_path):
    with EpisodeReader(dataset_path) as reader:
        train, valid = reader.split('train'), reader.split('valid')
    assert len(valid) == 2 and len(train) == 3
    for split, names in (('train', train), ('valid', valid)):
        data = EpisodeDataset(dataset_path, split=split, image_size=8)
        episodes = {_episode_of(data[i]) for i in range(len(data))}
        assert episodes == {int(n.split('_')[1]) for n in names}
        assert len(data) == sum(LENGTHS[e] for e in episodes)
        assert data.all_actions().shape[0] == len(data)
    with pytest.raises(ValueError):
        EpisodeDataset(dataset_path, split='test')


def test_augment_stays_in_range_and_varies(dataset_path):
    data = EpisodeDataset(dataset_path, split=None, image_size=16, augment=True,
                          image_key='wrist_rgb')
    torch.manual_seed(0)
    images = torch.stack([data[7]['image'] for _ in range(8)])
    assert images.shape == (8, 3, 16, 16)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert not torch.allclose(images[0], images[1])


def test_dataloader_with_two_workers(dataset_path):
    data = EpisodeDataset(dataset_path, split=None, image_size=16, chunk_size=2)
    data[0]  # handles opened here must not leak into the workers
    loader = DataLoader(data, batch_size=4, num_workers=2, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    seen = []
    for batch in loader:
        assert batch['image'].shape[1:] == (3, 16, 16)
        assert batch['actions'].shape[1:] == (2, 3)
        assert len(batch['instruction']) == batch['image'].shape[0]
        for row, instruction in zip(batch['actions'], batch['instruction']):
            assert instruction == f'task {int(row[0, 0])}'
        seen.extend((batch['actions'][:, 0, 2]).tolist())
    assert sorted(seen) == sorted(e * 100 + s for e, n in enumerate(LENGTHS) for s in range(n))
    pickle.loads(pickle.dumps(data))[0]  # spawn-style workers pickle the dataset
    data.close()


def test_several_files_and_a_consolidated_one(dataset_path, tmp_path):
    shared = consolidate(dataset_path, tmp_path / 'shared.hdf5')
    data = EpisodeDataset([dataset_path, shared], split=None, image_size=8)
    assert len(data) == 2 * sum(LENGTHS)
    torch.testing.assert_close(data[0]['image'], data[sum(LENGTHS)]['image'])


def test_missing_keys_are_clear_errors(dataset_path):
    with pytest.raises(EpisodeReadError, match='no observation'):
        EpisodeDataset(dataset_path, image_key='depth_rgb')
    with pytest.raises(EpisodeReadError, match='no observation'):
        EpisodeDataset(dataset_path, proprio_key='ee_pose')
    with pytest.raises(ValueError):
        EpisodeDataset(dataset_path, chunk_size=0)


def test_open_episode_files_are_bounded(dataset_path, monkeypatch):
    monkeypatch.setattr(dataset_module, '_MAX_OPEN_EPISODES', 2)
    data = EpisodeDataset(dataset_path, split=None, image_size=None, image_key='wrist_rgb')
    for index in range(len(data)):
        item = data[index]
        episode, step = _episode_of(item), int(item['actions'][0, 1])
        expected = torch.from_numpy(_frame(episode, step)).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(item['image'], expected)
        assert len(data._frames) <= 2


def test_frame_cache_serves_the_frames_it_read_without_the_file(dataset_path):
    uncached = EpisodeDataset(dataset_path, split=None, image_size=12, image_key='wrist_rgb')
    cached = EpisodeDataset(dataset_path, split=None, image_size=12, image_key='wrist_rgb',
                            cache_frames=True)
    first = [cached[index]['image'] for index in range(len(cached))]
    cached.close()
    # The cache answers from memory now: an unreadable episode file would not be noticed.
    cached._frames_of = None
    for index, image in enumerate(first):
        expected = uncached[index]['image']
        assert image.dtype == torch.float32 and image.shape == (3, 12, 12)
        torch.testing.assert_close(image, expected, atol=0.5 / 255 + 1e-6, rtol=0)
        torch.testing.assert_close(cached[index]['image'], image)
    assert pickle.loads(pickle.dumps(cached))._frame_cache is None  # workers fill their own


def test_frame_cache_refuses_augmentation_and_native_size(dataset_path):
    with pytest.raises(ValueError, match='cache_frames'):
        EpisodeDataset(dataset_path, image_size=12, augment=True, cache_frames=True)
    with pytest.raises(ValueError, match='cache_frames'):
        EpisodeDataset(dataset_path, image_size=None, cache_frames=True)


def test_peer_groups_give_the_annotated_positions_on_first_segment_frames_only(tmp_path):
    import h5py
    import json
    gripper = [0, 0, 0, 1, 1, 0]
    path = write_gripper_episode(tmp_path / 'peers.hdf5', gripper)
    with EpisodeReader(path) as reader:
        name = reader.demo_names()[0]
    peers = {'colour': [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], 'shape': [[0.1, 0.2, 0.3]]}
    with h5py.File(path, 'r+') as handle:
        handle['data'][name].attrs[dataset_module.PEERS_ATTRIBUTE] = json.dumps(peers)
    data = EpisodeDataset(path, split=None, image_size=8, action_offset=1, subgoal_dim=-1,
                          peer_groups=('shape', 'colour'))
    item = data[0]
    assert item['peer_positions'].shape == (2, dataset_module.MAX_PEERS, 3)
    np.testing.assert_allclose(item['peer_positions'][1, :2].numpy(), peers['colour'])
    np.testing.assert_allclose(item['peer_positions'][0, 0].numpy(), peers['shape'][0])
    assert item['peer_mask'][:, :2].tolist() == [[True, False], [True, True]]
    assert not item['peer_mask'][:, 2:].any()
    # Frame 2's first action is in segment 1 (the grasp is on): nothing counts any more.
    assert not data[2]['peer_mask'].any() and not data[5]['peer_mask'].any()
    with pytest.raises(EpisodeReadError, match="no group 'size'"):
        EpisodeDataset(path, split=None, image_size=8, subgoal_dim=-1, peer_groups=('size',))
    with pytest.raises(ValueError, match='peer_groups need subgoal_dim'):
        EpisodeDataset(path, split=None, image_size=8, peer_groups=('colour',))
    bare = write_gripper_episode(tmp_path / 'bare.hdf5', gripper)
    with pytest.raises(EpisodeReadError, match='vla-sim-annotate-peers'):
        EpisodeDataset(bare, split=None, image_size=8, subgoal_dim=-1, peer_groups=('colour',))
