"""
Per-dimension action statistics and the normalisation a policy is trained with.

The same statistics must be used at training and at inference, so they are saved next to the
checkpoint (STATS_FILENAME) as JSON. Dimensions whose mask is False (typically grippers, already
in [0, 1]) pass through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any, Mapping

from humanoid_vla.actions import ActionSpecMismatchError
import numpy as np

STATS_FILENAME = 'action_stats.json'
MODES = ('bounds_q99', 'mean_std', 'min_max')
EPS = 1e-8
_ARRAY_FIELDS = ('min', 'max', 'mean', 'std', 'q01', 'q99')


class NormalizationError(ValueError):
    """Raised for unusable statistics or data they cannot be computed from."""


@dataclass
class NormalizationStats:
    """Per-dimension statistics of a dataset's actions and how to normalise with them."""

    min: np.ndarray  # noqa: A003 (the stats' own vocabulary)
    max: np.ndarray  # noqa: A003
    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray
    mode: str = 'bounds_q99'

    def __post_init__(self) -> None:
        """Coerce fields to arrays and refuse inconsistent statistics."""
        if self.mode not in MODES:
            raise NormalizationError(
                f'unknown normalisation mode {self.mode!r}; use one of {MODES}')
        for name in _ARRAY_FIELDS:
            try:
                array = np.array(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise NormalizationError(
                    f'stats field {name!r} must be numeric: {error}') from None
            if array.ndim != 1 or array.size == 0:
                raise NormalizationError(
                    f'stats field {name!r} must be a non-empty 1-D array, got shape {array.shape}')
            if not np.all(np.isfinite(array)):
                raise NormalizationError(f'stats field {name!r} has non-finite values: {array}')
            setattr(self, name, array)
        mask = np.array(self.mask)
        if mask.dtype != bool or mask.ndim != 1:
            raise NormalizationError(
                f'mask must be a 1-D boolean array, got dtype {mask.dtype} shape {mask.shape}')
        self.mask = mask
        dim = self.min.shape[0]
        for name in (*_ARRAY_FIELDS, 'mask'):
            size = getattr(self, name).shape[0]
            if size != dim:
                raise NormalizationError(
                    f"stats field {name!r} has {size} dimensions, 'min' has {dim}")
        if np.any(self.min > self.max) or np.any(self.q01 > self.q99):
            raise NormalizationError('stats need min <= max and q01 <= q99 in every dimension')
        if np.any(self.std < 0):
            raise NormalizationError('stats need std >= 0 in every dimension')

    @property
    def dim(self) -> int:
        """Return the number of action dimensions."""
        return int(self.min.shape[0])

    @classmethod
    def from_actions(cls, actions: Any, mask: Any = None,
                     mode: str = 'bounds_q99') -> NormalizationStats:
        """Compute statistics from (N, D) actions (leading axes are flattened, e.g. chunks)."""
        array = np.asarray(actions, dtype=np.float64)
        if array.ndim < 2:
            raise NormalizationError(
                f'actions must be an (N, D) array, got shape {array.shape}')
        array = array.reshape(-1, array.shape[-1])
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise NormalizationError(
                f'cannot compute action statistics from an empty array of shape {array.shape}')
        bad = ~np.isfinite(array)
        if bad.any():
            dims = sorted(set(np.nonzero(bad)[1].tolist()))
            raise NormalizationError(
                f'actions have {int(bad.sum())} non-finite value(s) in dimension(s) {dims}')
        if mask is None:
            mask = np.ones(array.shape[1], dtype=bool)
        mask = np.asarray(mask)
        if mask.shape != (array.shape[1],):
            raise ActionSpecMismatchError(array.shape[1], mask.shape, 'normalisation mask')
        return cls(
            min=array.min(axis=0), max=array.max(axis=0),
            mean=array.mean(axis=0), std=array.std(axis=0),
            q01=np.quantile(array, 0.01, axis=0), q99=np.quantile(array, 0.99, axis=0),
            mask=mask, mode=mode,
        )

    def _degenerate(self) -> np.ndarray:
        if self.mode == 'mean_std':
            return self.std < EPS
        low, high = (self.q01, self.q99) if self.mode == 'bounds_q99' else (self.min, self.max)
        return (high - low) < EPS

    def _checked(self, values: Any, what: str) -> np.ndarray:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim == 0 or array.shape[-1] != self.dim:
            got = array.shape[-1] if array.ndim else array.shape
            raise ActionSpecMismatchError(self.dim, got, what)
        return array

    def normalize(self, x: Any) -> np.ndarray:
        """Map raw (..., D) actions to the model's range; bounds modes clip to [-1, 1]."""
        array = self._checked(x, 'actions to normalise')
        degenerate = self._degenerate()
        if self.mode == 'mean_std':
            scaled = (array - self.mean) / (self.std + EPS)
        else:
            low, high = (self.q01, self.q99) if self.mode == 'bounds_q99' \
                else (self.min, self.max)
            span = np.where(degenerate, 1.0, high - low)
            scaled = np.clip(2.0 * (array - low) / span - 1.0, -1.0, 1.0)
        scaled = np.where(degenerate, 0.0, scaled)
        return np.where(self.mask, scaled, array)

    def affine(self, dims: slice) -> tuple[np.ndarray, np.ndarray]:
        """
        Return ``(scale, shift)`` with ``normalize(x) = scale * x + shift`` on ``dims``.

        Before the bounds modes' clipping; for a model that must normalise raw positions
        itself (``MapAnchors``). Degenerate dimensions get scale 0.
        """
        degenerate = self._degenerate()[dims]
        if self.mode == 'mean_std':
            scale = 1.0 / (self.std[dims] + EPS)
            shift = -self.mean[dims] * scale
        else:
            low, high = (self.q01, self.q99) if self.mode == 'bounds_q99' \
                else (self.min, self.max)
            span = np.where(degenerate, 1.0, high[dims] - low[dims])
            scale = 2.0 / span
            shift = -1.0 - low[dims] * scale
        scale = np.where(degenerate, 0.0, scale)
        shift = np.where(degenerate, 0.0, shift)
        return scale.astype(np.float32), shift.astype(np.float32)

    def unnormalize(self, y: Any) -> np.ndarray:
        """Map model outputs (..., D) back to raw actions; a degenerate dim maps to q01 or mean."""
        array = self._checked(y, 'actions to unnormalise')
        if self.mode == 'mean_std':
            raw = array * (self.std + EPS) + self.mean
            raw = np.where(self._degenerate(), self.mean, raw)
        else:
            low, high = (self.q01, self.q99) if self.mode == 'bounds_q99' \
                else (self.min, self.max)
            raw = (array + 1.0) / 2.0 * (high - low) + low
            raw = np.where(self._degenerate(), low, raw)
        return np.where(self.mask, raw, array)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able description."""
        data: dict[str, Any] = {name: getattr(self, name).tolist() for name in _ARRAY_FIELDS}
        data['mask'] = self.mask.tolist()
        data['mode'] = self.mode
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NormalizationStats:
        """Rebuild statistics from to_dict output, naming any missing or unknown key."""
        required = set(_ARRAY_FIELDS) | {'mask'}
        missing = sorted(required - set(data))
        if missing:
            raise NormalizationError(f'normalisation stats are missing key(s) {missing}')
        unknown = sorted(set(data) - required - {'mode'})
        if unknown:
            raise NormalizationError(f'unknown normalisation stats key(s) {unknown}')
        values = {name: data[name] for name in _ARRAY_FIELDS}
        return cls(**values, mask=np.array(data['mask']), mode=data.get('mode', 'bounds_q99'))

    def save(self, path: str | Path) -> Path:
        """Write JSON to path (or to path/STATS_FILENAME when path is a directory)."""
        target = _resolve(path)
        target.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + '\n')
        return target

    @classmethod
    def load(cls, path: str | Path) -> NormalizationStats:
        """Read statistics written by save (a file, or a directory holding STATS_FILENAME)."""
        target = _resolve(path)
        if not target.is_file():
            raise FileNotFoundError(f'no normalisation stats at {target}')
        try:
            data = json.loads(target.read_text())
        except json.JSONDecodeError as error:
            raise NormalizationError(f'{target} is not valid JSON: {error}') from None
        if not isinstance(data, dict):
            raise NormalizationError(f'{target} must hold a JSON object')
        return cls.from_dict(data)


def _resolve(path: str | Path) -> Path:
    target = Path(path)
    return target / STATS_FILENAME if target.is_dir() else target
