"""Tests for action statistics and normalisation."""

import json

from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.normalization import (
    NormalizationError,
    NormalizationStats,
    STATS_FILENAME,
)
import numpy as np
import pytest


def dataset(seed: int = 0) -> np.ndarray:
    """Return (N, 8) actions in the default spec layout with a binary gripper."""
    rng = np.random.default_rng(seed)
    actions = rng.normal([0.4, -0.2, 0.9, 0, 0, 0, 1, 0], [0.1, 0.2, 0.05, 0.1, 0.1, 0.1, 0.1, 1],
                         size=(1000, 8))
    actions[:, 7] = rng.integers(0, 2, size=1000)
    return actions


@pytest.mark.parametrize('mode', ['bounds_q99', 'mean_std', 'min_max'])
def test_round_trip_for_in_range_data(mode):
    actions = dataset()
    stats = NormalizationStats.from_actions(actions, mode=mode)
    in_range = np.clip(actions, stats.q01, stats.q99)
    normalized = stats.normalize(in_range)
    np.testing.assert_allclose(stats.unnormalize(normalized), in_range, rtol=0, atol=1e-9)


def test_bounds_mode_maps_quantiles_to_unit_range_and_clips():
    actions = dataset()
    stats = NormalizationStats.from_actions(actions)
    np.testing.assert_allclose(stats.normalize(stats.q01), -1.0)
    np.testing.assert_allclose(stats.normalize(stats.q99), 1.0)
    normalized = stats.normalize(actions)
    assert normalized.min() >= -1.0 and normalized.max() <= 1.0


def test_mean_std_mode_standardises():
    actions = dataset()
    stats = NormalizationStats.from_actions(actions, mode='mean_std')
    normalized = stats.normalize(actions)
    np.testing.assert_allclose(normalized.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(normalized.std(axis=0), 1.0, atol=1e-6)


def test_masked_gripper_is_left_untouched():
    actions = dataset()
    mask = ~ActionSpec().gripper_mask()
    stats = NormalizationStats.from_actions(actions, mask=mask)
    normalized = stats.normalize(actions)
    np.testing.assert_array_equal(normalized[:, 7], actions[:, 7])
    np.testing.assert_array_equal(stats.unnormalize(normalized)[:, 7], actions[:, 7])
    assert not np.allclose(normalized[:, 0], actions[:, 0])


@pytest.mark.parametrize('mode, raw', [('bounds_q99', 0.7), ('min_max', 0.7),
                                       ('mean_std', 0.7)])
def test_degenerate_dimension_is_safe(mode, raw):
    actions = dataset()
    actions[:, 2] = raw
    stats = NormalizationStats.from_actions(actions, mode=mode)
    normalized = stats.normalize(actions)
    assert np.all(np.isfinite(normalized))
    np.testing.assert_array_equal(normalized[:, 2], 0.0)
    back = stats.unnormalize(np.full((4, 8), 0.9))
    np.testing.assert_allclose(back[:, 2], raw)


def test_works_on_leading_axes():
    actions = dataset()
    stats = NormalizationStats.from_actions(actions.reshape(100, 10, 8))
    chunk = np.clip(actions.reshape(50, 20, 8), stats.q01, stats.q99)
    assert stats.normalize(chunk).shape == (50, 20, 8)
    np.testing.assert_allclose(stats.unnormalize(stats.normalize(chunk)), chunk, atol=1e-9)


def test_single_sample_is_enough():
    stats = NormalizationStats.from_actions(np.array([[0.1, 0.2]]))
    np.testing.assert_allclose(stats.unnormalize(stats.normalize([0.1, 0.2])), [0.1, 0.2])


@pytest.mark.parametrize('actions, fragment', [
    (np.zeros((0, 8)), 'empty'),
    (np.zeros(8), r'\(N, D\)'),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), r'non-finite value\(s\) in dimension\(s\) \[1\]'),
    (np.array([[0.0, np.inf]]), 'non-finite'),
])
def test_from_actions_refuses_bad_data(actions, fragment):
    with pytest.raises(NormalizationError, match=fragment):
        NormalizationStats.from_actions(actions)


def test_refuses_unknown_mode_bad_mask_and_wrong_dimension():
    actions = dataset()
    with pytest.raises(NormalizationError, match='mode'):
        NormalizationStats.from_actions(actions, mode='zscore')
    with pytest.raises(ActionSpecMismatchError):
        NormalizationStats.from_actions(actions, mask=np.ones(7, dtype=bool))
    with pytest.raises(NormalizationError, match='boolean'):
        NormalizationStats.from_actions(actions, mask=np.ones(8))
    stats = NormalizationStats.from_actions(actions)
    with pytest.raises(ActionSpecMismatchError, match='expected dimension 8'):
        stats.normalize(np.zeros(7))
    with pytest.raises(ActionSpecMismatchError):
        stats.unnormalize(np.zeros((3, 9)))


@pytest.mark.parametrize('mode', ['bounds_q99', 'mean_std'])
def test_save_and_load(tmp_path, mode):
    stats = NormalizationStats.from_actions(dataset(), mask=~ActionSpec().gripper_mask(),
                                            mode=mode)
    written = stats.save(tmp_path / 'stats.json')
    loaded = NormalizationStats.load(written)
    assert loaded.mode == mode
    for name in ('min', 'max', 'mean', 'std', 'q01', 'q99', 'mask'):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(stats, name))
    assert loaded.mask.dtype == bool


def test_save_into_directory_uses_standard_filename(tmp_path):
    stats = NormalizationStats.from_actions(dataset())
    assert stats.save(tmp_path) == tmp_path / STATS_FILENAME
    assert STATS_FILENAME == 'action_stats.json'
    assert NormalizationStats.load(tmp_path).dim == 8
    assert json.loads((tmp_path / STATS_FILENAME).read_text())['mode'] == 'bounds_q99'


def test_from_dict_names_missing_keys(tmp_path):
    data = NormalizationStats.from_actions(dataset()).to_dict()
    del data['q99']
    with pytest.raises(NormalizationError, match='q99'):
        NormalizationStats.from_dict(data)
    with pytest.raises(FileNotFoundError):
        NormalizationStats.load(tmp_path / 'missing.json')


def test_constructor_refuses_inconsistent_stats():
    ones = np.ones(2)
    with pytest.raises(NormalizationError, match="'max' has 3 dimensions"):
        NormalizationStats(min=ones, max=np.ones(3), mean=ones, std=ones, q01=ones, q99=ones,
                           mask=np.ones(2, dtype=bool))
    with pytest.raises(NormalizationError, match='q01 <= q99'):
        NormalizationStats(min=ones, max=ones, mean=ones, std=ones, q01=ones, q99=-ones,
                           mask=np.ones(2, dtype=bool))


@pytest.mark.parametrize('mode', ['bounds_q99', 'mean_std', 'min_max'])
def test_affine_is_the_normalisation_of_in_range_positions(mode):
    actions = dataset()
    stats = NormalizationStats.from_actions(actions, mode=mode)
    in_range = np.clip(actions, stats.q01, stats.q99)
    scale, shift = stats.affine(slice(0, 2))
    np.testing.assert_allclose(scale * in_range[:, :2] + shift, stats.normalize(in_range)[:, :2],
                               rtol=0, atol=1e-5)


def test_affine_of_a_degenerate_dimension_is_zero():
    actions = dataset()
    actions[:, 1] = 0.25
    scale, shift = NormalizationStats.from_actions(actions).affine(slice(0, 2))
    assert scale[1] == 0.0 and shift[1] == 0.0 and scale[0] > 0.0
