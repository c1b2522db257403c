"""
Discretise continuous actions into text tokens for language-model policies.

Every dimension is cut into n_bins uniform bins between low and high; dimension i in bin t is the
token "<act_i_t>". Parsing is strict: a reply that misses, repeats or reorders a dimension is
refused rather than padded, because a made-up value would be sent to the robot.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from humanoid_vla.actions import ActionSpecMismatchError
import numpy as np

_TOKEN = re.compile(r'<act_([0-9]+)_([0-9]+)>')
_TOKEN_START = '<act'


class ActionTokenizerError(ValueError):
    """Raised for an unusable tokenizer configuration or values that cannot be tokenised."""


class ActionParseError(ActionTokenizerError):
    """Raised when text is not exactly one well-formed token per action dimension."""


class ActionTokenizer:
    """Uniform-bin action tokenizer with scalar or per-dimension bounds."""

    def __init__(self, n_bins: int = 256, low: float | Any = -1.0, high: float | Any = 1.0,
                 action_dim: int | None = None) -> None:
        """Validate the bin count and bounds; arrays fix action_dim."""
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
            raise ActionTokenizerError(f'n_bins must be an integer >= 2, got {n_bins!r}')
        low_array = np.array(low, dtype=np.float64)
        high_array = np.array(high, dtype=np.float64)
        for name, array in (('low', low_array), ('high', high_array)):
            if array.ndim > 1:
                raise ActionTokenizerError(f'{name} must be a scalar or a 1-D array')
            if not np.all(np.isfinite(array)):
                raise ActionTokenizerError(f'{name} must be finite, got {array}')
        sizes = {a.shape[0] for a in (low_array, high_array) if a.ndim == 1}
        if action_dim is not None:
            if isinstance(action_dim, bool) or int(action_dim) != action_dim or action_dim < 1:
                raise ActionTokenizerError(
                    f'action_dim must be a positive integer, got {action_dim!r}')
            action_dim = int(action_dim)
            for size in sizes:
                if size != action_dim:
                    raise ActionSpecMismatchError(action_dim, size, 'tokenizer bounds')
        elif len(sizes) > 1:
            raise ActionTokenizerError(
                f'low and high have different lengths ({low_array.shape[0]} and '
                f'{high_array.shape[0]})')
        elif sizes:
            action_dim = sizes.pop()
        if action_dim is not None:
            low_array = np.broadcast_to(low_array, (action_dim,)).copy()
            high_array = np.broadcast_to(high_array, (action_dim,)).copy()
        if not np.all(high_array > low_array):
            raise ActionTokenizerError(f'high must exceed low everywhere: low={low_array}, '
                                       f'high={high_array}')
        self.n_bins = int(n_bins)
        self.low = low_array
        self.high = high_array
        self.action_dim = action_dim

    @property
    def bin_width(self) -> np.ndarray:
        """Return the width of one bin (scalar or per dimension)."""
        return (self.high - self.low) / self.n_bins

    def _check_last_dim(self, size: int, what: str) -> None:
        if self.action_dim is not None and size != self.action_dim:
            raise ActionSpecMismatchError(self.action_dim, size, what)

    def encode(self, actions: Any) -> np.ndarray:
        """Map (..., D) actions to int64 bin ids, clipping to the bounds first."""
        array = np.asarray(actions, dtype=np.float64)
        if array.ndim == 0:
            raise ActionTokenizerError('encode needs at least a 1-D array of action values')
        self._check_last_dim(array.shape[-1], 'actions to encode')
        if not np.all(np.isfinite(array)):
            raise ActionTokenizerError('cannot tokenise non-finite action values')
        clipped = np.clip(array, self.low, self.high)
        ids = np.floor((clipped - self.low) / self.bin_width).astype(np.int64)
        return np.clip(ids, 0, self.n_bins - 1)

    def decode(self, ids: Any) -> np.ndarray:
        """Map (..., D) bin ids back to the bin centres."""
        array = np.asarray(ids)
        if array.ndim == 0:
            raise ActionTokenizerError('decode needs at least a 1-D array of bin ids')
        if array.dtype.kind not in 'iu':
            if array.dtype.kind != 'f' or not np.all(np.isfinite(array)) \
                    or not np.all(array == np.round(array)):
                raise ActionTokenizerError(f'bin ids must be integers, got dtype {array.dtype}')
        array = array.astype(np.int64)
        self._check_last_dim(array.shape[-1], 'bin ids to decode')
        if array.size and (array.min() < 0 or array.max() >= self.n_bins):
            raise ActionTokenizerError(
                f'bin ids must lie in [0, {self.n_bins - 1}], got range '
                f'[{array.min()}, {array.max()}]')
        return self.low + (array + 0.5) * self.bin_width

    def to_string(self, ids: Any) -> str:
        """Format one (D,) id vector as "<act_0_t0><act_1_t1>..."."""
        array = np.asarray(ids)
        if array.ndim != 1 or array.dtype.kind not in 'iu':
            raise ActionTokenizerError(
                f'to_string needs a 1-D integer array, got shape {array.shape} '
                f'dtype {array.dtype}')
        self._check_last_dim(array.shape[0], 'bin ids to format')
        if array.size and (array.min() < 0 or array.max() >= self.n_bins):
            raise ActionTokenizerError(f'bin ids must lie in [0, {self.n_bins - 1}]')
        return ''.join(f'<act_{i}_{int(t)}>' for i, t in enumerate(array))

    def parse(self, text: str, action_dim: int | None = None) -> np.ndarray:
        """Read exactly one token per dimension 0..action_dim-1, in order, into (D,) int64 ids."""
        dim = self.action_dim if action_dim is None else int(action_dim)
        if dim is None or dim < 1:
            raise ActionTokenizerError('parse needs a positive action_dim')
        self._check_last_dim(dim, 'requested action_dim')
        if not isinstance(text, str):
            raise ActionParseError(
                f'expected a string of action tokens, got {type(text).__name__}')
        ids: list[int] = []
        position = 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position == len(text):
                break
            match = _TOKEN.match(text, position)
            if match is None:
                raise ActionParseError(_describe_bad_text(text, position))
            index, bin_id = int(match.group(1)), int(match.group(2))
            expected = len(ids)
            if index >= dim:
                raise ActionParseError(
                    f'token {match.group(0)!r} names dimension {index}, but action_dim is {dim}')
            if index < expected:
                raise ActionParseError(
                    f'token {match.group(0)!r} repeats dimension {index}')
            if index > expected:
                raise ActionParseError(
                    f'token {match.group(0)!r} is out of order: expected dimension {expected}, '
                    f'got {index} (dimensions {list(range(expected, index))} missing)')
            if bin_id >= self.n_bins:
                raise ActionParseError(
                    f'token {match.group(0)!r} has bin {bin_id}, outside [0, {self.n_bins - 1}]')
            ids.append(bin_id)
            position = match.end()
        if not ids:
            raise ActionParseError(f'no action tokens found in {text!r}')
        if len(ids) < dim:
            raise ActionParseError(
                f'missing dimensions {list(range(len(ids), dim))}: got {len(ids)} of {dim} '
                f'action tokens')
        return np.array(ids, dtype=np.int64)

    def vocabulary(self, action_dim: int | None = None) -> list[str]:
        """Return every token string, e.g. to register them as special tokens."""
        dim = self.action_dim if action_dim is None else int(action_dim)
        if dim is None or dim < 1:
            raise ActionTokenizerError('vocabulary needs a positive action_dim')
        return [f'<act_{i}_{t}>' for i in range(dim) for t in range(self.n_bins)]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able description, as stored inside checkpoints."""
        def bound(array: np.ndarray) -> float | list[float]:
            return float(array) if array.ndim == 0 else array.tolist()
        return {'n_bins': self.n_bins, 'low': bound(self.low), 'high': bound(self.high),
                'action_dim': self.action_dim}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionTokenizer:
        """Rebuild a tokenizer from to_dict output, refusing unknown keys."""
        known = {'n_bins', 'low', 'high', 'action_dim'}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ActionTokenizerError(
                f'unknown tokenizer key(s) {unknown}; known keys: {sorted(known)}')
        return cls(**dict(data))


def _describe_bad_text(text: str, position: int) -> str:
    rest = text[position:]
    if rest.startswith('<'):
        end = rest.find('>')
        snippet = rest[:end + 1] if end != -1 else rest[:20]
        if rest.startswith(_TOKEN_START):
            return f'malformed action token {snippet!r} at character {position}'
    else:
        snippet = re.split(r'[<\s]', rest, maxsplit=1)[0][:20]
    return f'unexpected text {snippet!r} at character {position}; only action tokens allowed'
