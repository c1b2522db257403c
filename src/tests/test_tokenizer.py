"""Tests for the uniform-bin action tokenizer and its strict parser."""

import json

from humanoid_vla.actions import ActionSpecMismatchError
from humanoid_vla.tokenizer import ActionParseError, ActionTokenizer, ActionTokenizerError
import numpy as np
import pytest


def test_round_trip_within_half_a_bin_for_random_vectors():
    rng = np.random.default_rng(0)
    tokenizer = ActionTokenizer(n_bins=256)
    actions = rng.uniform(-1.0, 1.0, size=(5000, 8))
    ids = tokenizer.encode(actions)
    assert ids.dtype == np.int64 and ids.shape == actions.shape
    assert ids.min() >= 0 and ids.max() <= 255
    error = np.abs(tokenizer.decode(ids) - actions)
    assert error.max() <= 1.0 / 256 + 1e-12


@pytest.mark.parametrize('n_bins', [2, 7, 256, 1000])
def test_round_trip_for_several_bin_counts(n_bins):
    rng = np.random.default_rng(n_bins)
    tokenizer = ActionTokenizer(n_bins=n_bins, low=-2.0, high=3.0)
    actions = rng.uniform(-2.0, 3.0, size=(2000, 3))
    error = np.abs(tokenizer.decode(tokenizer.encode(actions)) - actions)
    assert error.max() <= 5.0 / n_bins / 2 + 1e-12


def test_per_dimension_bounds():
    rng = np.random.default_rng(1)
    low = np.array([-0.5, 0.0, -3.0])
    high = np.array([0.5, 1.0, 3.0])
    tokenizer = ActionTokenizer(n_bins=64, low=low, high=high)
    assert tokenizer.action_dim == 3
    actions = rng.uniform(low, high, size=(3000, 3))
    error = np.abs(tokenizer.decode(tokenizer.encode(actions)) - actions)
    assert np.all(error.max(axis=0) <= (high - low) / 64 / 2 + 1e-12)
    np.testing.assert_array_equal(tokenizer.encode(low), [0, 0, 0])
    np.testing.assert_array_equal(tokenizer.encode(high), [63, 63, 63])


def test_values_outside_bounds_are_clipped():
    tokenizer = ActionTokenizer(n_bins=10)
    np.testing.assert_array_equal(tokenizer.encode([-5.0, 5.0]), [0, 9])


def test_encode_refuses_non_finite_and_wrong_dimension():
    tokenizer = ActionTokenizer(action_dim=2)
    with pytest.raises(ActionTokenizerError, match='non-finite'):
        tokenizer.encode([0.0, np.nan])
    with pytest.raises(ActionSpecMismatchError):
        tokenizer.encode([0.0, 0.0, 0.0])


def test_decode_refuses_out_of_range_or_fractional_ids():
    tokenizer = ActionTokenizer(n_bins=4)
    with pytest.raises(ActionTokenizerError, match=r'\[0, 3\]'):
        tokenizer.decode([4])
    with pytest.raises(ActionTokenizerError, match='integers'):
        tokenizer.decode([1.5])


@pytest.mark.parametrize('kwargs', [
    {'n_bins': 1}, {'low': 1.0, 'high': 1.0}, {'low': [0.0, 0.0], 'high': [1.0, 0.0]},
    {'low': [0.0, 0.0], 'high': [1.0, 1.0, 1.0]}, {'low': np.nan},
])
def test_constructor_refuses_bad_configuration(kwargs):
    with pytest.raises(ValueError):
        ActionTokenizer(**kwargs)


def test_constructor_refuses_bounds_that_disagree_with_action_dim():
    with pytest.raises(ActionSpecMismatchError):
        ActionTokenizer(low=[-1.0, -1.0], high=1.0, action_dim=3)


def test_string_round_trip():
    rng = np.random.default_rng(2)
    tokenizer = ActionTokenizer(n_bins=256, action_dim=8)
    for _ in range(200):
        ids = rng.integers(0, 256, size=8)
        text = tokenizer.to_string(ids)
        np.testing.assert_array_equal(tokenizer.parse(text, 8), ids)


def test_to_string_format():
    tokenizer = ActionTokenizer(n_bins=256)
    assert tokenizer.to_string(np.array([3, 0, 255])) == '<act_0_3><act_1_0><act_2_255>'


def test_parse_accepts_whitespace_between_tokens():
    tokenizer = ActionTokenizer(n_bins=256)
    ids = tokenizer.parse('  <act_0_5> <act_1_6>\n\t<act_2_7>  ', 3)
    assert ids.dtype == np.int64
    assert ids.tolist() == [5, 6, 7]


def test_parse_uses_the_tokenizer_dimension_by_default():
    tokenizer = ActionTokenizer(action_dim=2)
    assert tokenizer.parse('<act_0_1><act_1_2>').tolist() == [1, 2]
    with pytest.raises(ActionSpecMismatchError):
        tokenizer.parse('<act_0_1><act_1_2><act_2_3>', 3)


@pytest.mark.parametrize('text, fragment', [
    ('', 'no action tokens'),
    ('   ', 'no action tokens'),
    ('<act_0_1><act_1_2>', r'missing dimensions \[2\]'),
    ('<act_0_1><act_1_2><act_1_3>', 'repeats dimension 1'),
    ('<act_0_1><act_2_2><act_1_3>', 'out of order'),
    ('<act_1_2><act_0_1><act_2_3>', 'out of order'),
    ('<act_0_1><act_1_2><act_2_3><act_3_4>', 'dimension 3, but action_dim is 3'),
    ('<act_0_1><act_1_256><act_2_3>', 'bin 256'),
    ('<act_0_1><act_1_x><act_2_3>', "malformed action token '<act_1_x>'"),
    ('<act_0_1><act_1><act_2_3>', "malformed action token '<act_1>'"),
    ('<act_0_1><act_1_-2><act_2_3>', 'malformed'),
    ('<act_0_1><act_1_2><act_2_3', 'malformed'),
    ('move <act_0_1><act_1_2><act_2_3>', "unexpected text 'move"),
    ('<act_0_1><act_1_2><act_2_3> done', "unexpected text 'done'"),
    ('<act_0_1>,<act_1_2><act_2_3>', "unexpected text ','"),
    ('<act_0_1><act_1_2><act_2_3></s>', 'unexpected text'),
])
def test_parse_errors(text, fragment):
    tokenizer = ActionTokenizer(n_bins=256)
    with pytest.raises(ActionParseError, match=fragment):
        tokenizer.parse(text, 3)


def test_parse_error_is_a_value_error():
    assert issubclass(ActionParseError, ValueError)


def test_vocabulary_lists_every_token():
    tokenizer = ActionTokenizer(n_bins=4, action_dim=2)
    vocabulary = tokenizer.vocabulary()
    assert len(vocabulary) == 8 and vocabulary[0] == '<act_0_0>' and vocabulary[-1] == '<act_1_3>'


@pytest.mark.parametrize('kwargs', [
    {}, {'n_bins': 32, 'low': [-1.0, 0.0], 'high': [1.0, 2.0]}, {'action_dim': 7},
])
def test_dict_round_trip(kwargs):
    tokenizer = ActionTokenizer(**kwargs)
    data = json.loads(json.dumps(tokenizer.to_dict()))
    back = ActionTokenizer.from_dict(data)
    assert back.to_dict() == tokenizer.to_dict()
    with pytest.raises(ActionTokenizerError, match='unknown tokenizer key'):
        ActionTokenizer.from_dict({**data, 'bins': 3})
