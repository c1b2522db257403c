"""
A torch Dataset of (image, instruction, action chunk) steps from episode files.

Actions, instructions and proprioception are small and loaded up front; frames are read lazily.
HDF5 handles are opened on first use in the process that uses them (each DataLoader worker
opens its own) and never pickled, because h5py handles must not cross a fork or a pickle.
Augmentation uses torch's RNG only, which DataLoader seeds differently in every worker.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
import json
import os
from pathlib import Path

import h5py
from humanoid_vla.camera_projection import ImageCrop
from humanoid_vla.data.episode_reader import EpisodeReader
from humanoid_vla.data.schema import EpisodeReadError, is_image_key, SPLITS
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

# Each cached frame dataset keeps its episode file open; bound them to stay under ulimit -n.
_MAX_OPEN_EPISODES = 64
_CROP_SCALE = (0.9, 1.0)
_BRIGHTNESS = 0.1
_CONTRAST = 0.1
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)
# Episode attribute holding the peer groups' positions (written by vla-sim-annotate-peers), and
# the most objects one group can hold (a scene has at most five).
PEERS_ATTRIBUTE = 'grounding_peers'
# Episode attribute: gripper segments done before the first frame (default 0). A recovery
# demonstration that starts with the target already in hand (vla-sim-record-recoveries) starts
# at segment 1, so its frames train the place map, not the grasp map.
FIRST_SEGMENT_ATTRIBUTE = 'first_segment'
MAX_PEERS = 5


@dataclass(frozen=True)
class _EpisodeRef:
    path_index: int
    name: str
    instruction: str
    actions: np.ndarray
    proprio: np.ndarray | None
    segment_ends: np.ndarray | None = None
    segment_indices: np.ndarray | None = None
    peers: np.ndarray | None = None  # (groups, MAX_PEERS, 3) positions
    peer_mask: np.ndarray | None = None  # (groups, MAX_PEERS) bool

    def segment_last_steps(self) -> np.ndarray:
        """Return the last step of every segment, in order (needs ``segment_ends``)."""
        return np.unique(self.segment_ends)

    @property
    def length(self) -> int:
        return self.actions.shape[0]


def segment_end_steps(values: np.ndarray) -> np.ndarray:
    """
    For each step, the last step of the run of equal ``values`` it belongs to.

    With a gripper command as ``values`` this is where each step's segment ends (the touch, the
    grasp, the release): the subgoal a frame is heading for.
    """
    values = np.asarray(values)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f'values must be a non-empty 1-D array, got shape {values.shape}')
    ends = np.append(np.flatnonzero(values[1:] != values[:-1]), values.size - 1)
    return ends[np.searchsorted(ends, np.arange(values.size))]


def segment_indices(values: np.ndarray) -> np.ndarray:
    """
    For each step, how many changes of ``values`` came before it.

    With a gripper command: 0 on the way to the touch or grasp, 1 while carrying to the place
    pose, and so on.  The grounding loss uses it to pick the heat map a frame's subgoal belongs to.
    """
    values = np.asarray(values)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f'values must be a non-empty 1-D array, got shape {values.shape}')
    return np.concatenate([[0], np.cumsum(values[1:] != values[:-1])]).astype(np.int64)


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def random_resized_crop(image: torch.Tensor, scale: tuple[float, float]) -> torch.Tensor:
    """Crop a random window keeping the aspect ratio, covering ``scale`` of the area."""
    _, height, width = image.shape
    side = _uniform(*scale) ** 0.5
    crop_h = max(1, round(height * side))
    crop_w = max(1, round(width * side))
    top = int(torch.randint(0, height - crop_h + 1, ()))
    left = int(torch.randint(0, width - crop_w + 1, ()))
    return image[:, top:top + crop_h, left:left + crop_w]


def color_jitter(image: torch.Tensor, brightness: float, contrast: float) -> torch.Tensor:
    """Scale brightness, then contrast around the mean grey, like torchvision's ColorJitter."""
    image = (image * _uniform(1 - brightness, 1 + brightness)).clamp(0.0, 1.0)
    weights = torch.tensor(_GRAY_WEIGHTS, dtype=image.dtype).view(3, 1, 1)
    mean = (image * weights).sum(dim=0).mean()
    factor = _uniform(1 - contrast, 1 + contrast)
    return ((image - mean) * factor + mean).clamp(0.0, 1.0)


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a (3, H, W) image with antialiasing (no-op when already that size)."""
    if tuple(image.shape[1:]) == size:
        return image
    return F.interpolate(image[None], size=size, mode='bilinear', align_corners=False,
                         antialias=True)[0]


class EpisodeDataset(Dataset):
    """
    Steps of one or more episode files, each with the chunk of actions that follows it.

    An item holds ``image`` float32 (3, S, S) in [0, 1], ``instruction`` str, ``actions``
    float32 (chunk_size, D) (past the episode end the last action repeats) with ``action_mask``
    bool (chunk_size,) False on those repeats, and ``proprio`` float32 when ``proprio_key`` is
    set.  ``image_size=None`` keeps the recorded resolution.  ``image_crop`` cuts that window out
    of every frame first (the model's ``image_crop``).

    ``action_offset`` is how many steps after its observation a step's first action is: 0 pairs
    each frame with the action recorded beside it; 1 with the next one.  Recordings of commands
    from topics store beside each frame the command already in effect (the hand is on its way
    there), so a policy that should answer the frame with the *next* command trains with 1.

    ``cache_frames`` keeps every frame, once read and resized, in memory as uint8 (N x 3 x S x
    S bytes: 1.2 GB for 33 k frames at 112): decompressing and resizing the recorded frames
    took about a fifth of each training step on a 2-core CPU, and training reads each frame
    about six times.  Rounding the resized frame to uint8 moves a pixel by at most
    1/510.  Augmentation crops the full-resolution frame, so it is refused with the cache.
    Each DataLoader worker fills its own cache.

    ``successful_only`` leaves out the episodes recorded with ``success`` False (a failed
    demonstration teaches the failure); ``num_unsuccessful_skipped`` counts them.

    ``subgoal_dim``: the index of an action dimension (the gripper command) whose changes end
    an episode's segments; items then hold ``subgoal`` float32 (D,), the action at the end of
    the segment of their first action (see :func:`segment_end_steps`), and ``subgoal_segment``
    int, the index of that segment (see :func:`segment_indices`).  ``segment_subgoals`` N > 0
    (needs ``subgoal_dim``) adds ``segment_subgoals`` float32 (N, D), the action at the end of
    each of the episode's first N segments (zeros past its last), and ``segment_subgoal_mask``
    bool (N,), True for the segments that exist and are not behind the item: what is still
    ahead, so a frame on the way to the grasp also learns where the object will be placed.

    ``peer_groups`` (needs ``subgoal_dim``) names groups of the episode attribute
    ``grounding_peers`` (a JSON object of position lists, e.g. every object sharing the named
    object's colour); items then hold ``peer_positions`` float32 (G, MAX_PEERS, 3) and
    ``peer_mask`` bool (G, MAX_PEERS), True on real positions of frames in the first segment
    only (later the grasped object has moved).
    """

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        split: str | None = 'train',
        image_key: str | None = None,
        chunk_size: int = 1,
        image_size: int | None = 224,
        augment: bool = False,
        proprio_key: str | None = None,
        action_offset: int = 0,
        successful_only: bool = False,
        subgoal_dim: int | None = None,
        segment_subgoals: int = 0,
        cache_frames: bool = False,
        peer_groups: Sequence[str] = (),
        image_crop: ImageCrop | None = None,
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not paths:
            raise ValueError('EpisodeDataset needs at least one episode file')
        if split is not None and split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS} or None, got {split!r}')
        if int(chunk_size) < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        if int(action_offset) < 0:
            raise ValueError(f'action_offset must be >= 0, got {action_offset}')
        if image_size is not None and int(image_size) < 1:
            raise ValueError(f'image_size must be >= 1 or None, got {image_size}')
        if int(segment_subgoals) < 0 or (int(segment_subgoals) > 0 and subgoal_dim is None):
            raise ValueError(f'segment_subgoals must be >= 0 and needs subgoal_dim, got '
                             f'{segment_subgoals} with subgoal_dim {subgoal_dim}')
        if peer_groups and subgoal_dim is None:
            raise ValueError('peer_groups need subgoal_dim (peers count in the first segment)')
        if cache_frames and (augment or image_size is None):
            raise ValueError('cache_frames needs a fixed image_size and no augmentation '
                             '(the cache holds the resized frames)')
        self._paths = [Path(p).expanduser().resolve() for p in paths]
        self._split = split
        self._chunk_size = int(chunk_size)
        self._action_offset = int(action_offset)
        self._image_size = None if image_size is None else int(image_size)
        self._image_crop = image_crop
        self._augment = bool(augment)
        self._proprio_key = proprio_key
        self._image_key = image_key
        self._successful_only = bool(successful_only)
        self._subgoal_dim = subgoal_dim
        self._segment_subgoals = int(segment_subgoals)
        self._peer_groups = tuple(peer_groups)
        self.num_unsuccessful_skipped = 0
        self._episodes: list[_EpisodeRef] = []
        for path_index, path in enumerate(self._paths):
            self._load_file(path_index, path)
        if not self._episodes:
            listed = ', '.join(map(str, paths))
            which = 'successful episodes' if self._successful_only else 'episodes'
            raise EpisodeReadError(f'no {which} in split {split!r} of {listed}')
        dims = {ep.actions.shape[1] for ep in self._episodes}
        if len(dims) != 1:
            raise EpisodeReadError(f'episodes disagree on the action dimension: {sorted(dims)}')
        lengths = np.array([ep.length for ep in self._episodes], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(lengths)])
        self._readers: dict[int, EpisodeReader] = {}
        self._frames: OrderedDict[int, h5py.Dataset] = OrderedDict()
        self._owner_pid: int | None = None
        self._cache_frames = bool(cache_frames)
        self._frame_cache: np.ndarray | None = None  # (N, 3, S, S) uint8, filled as read
        self._cached: np.ndarray | None = None  # (N,) bool

    # --- loading ----------------------------------------------------------------------------

    def _load_file(self, path_index: int, path: Path) -> None:
        with EpisodeReader(path) as reader:
            names = reader.demo_names() if self._split is None else reader.split(self._split)
            for name in names:
                if self._successful_only and not reader.success(name):
                    self.num_unsuccessful_skipped += 1
                    continue
                group = reader.demo_group(name)
                obs_keys = sorted(group['obs'])
                if self._image_key is None:
                    images = [k for k in obs_keys if is_image_key(k)]
                    if not images:
                        raise EpisodeReadError(
                            f'{name} of {path} has no *_rgb observation; pass image_key')
                    self._image_key = images[0]
                for key in (self._image_key, self._proprio_key):
                    if key is not None and key not in obs_keys:
                        raise EpisodeReadError(f'{name} of {path} has no observation {key!r}')
                proprio = None
                if self._proprio_key is not None:
                    proprio = group['obs'][self._proprio_key][()].astype(np.float32)
                actions = group['actions'][()].astype(np.float32)
                segment_ends = indices = None
                if self._subgoal_dim is not None:
                    if not -actions.shape[1] <= self._subgoal_dim < actions.shape[1]:
                        raise EpisodeReadError(
                            f'subgoal_dim {self._subgoal_dim} is outside the '
                            f'{actions.shape[1]} action dimensions of {name} of {path}')
                    segment_ends = segment_end_steps(actions[:, self._subgoal_dim])
                    indices = (segment_indices(actions[:, self._subgoal_dim])
                               + int(group.attrs.get(FIRST_SEGMENT_ATTRIBUTE, 0)))
                peers = peer_mask = None
                if self._peer_groups:
                    peers, peer_mask = self._read_peers(group, f'{name} of {path}')
                self._episodes.append(_EpisodeRef(
                    path_index=path_index,
                    name=name,
                    instruction=reader.instruction(name),
                    actions=actions,
                    proprio=proprio,
                    segment_ends=segment_ends,
                    segment_indices=indices,
                    peers=peers,
                    peer_mask=peer_mask,
                ))

    def _read_peers(self, group: h5py.Group, where: str) -> tuple[np.ndarray, np.ndarray]:
        """Return an episode's peer positions and mask for ``peer_groups``."""
        text = group.attrs.get(PEERS_ATTRIBUTE)
        if text is None:
            raise EpisodeReadError(f'{where} has no {PEERS_ATTRIBUTE!r} attribute: annotate '
                                   'the file with vla-sim-annotate-peers')
        table = json.loads(text)
        peers = np.zeros((len(self._peer_groups), MAX_PEERS, 3), np.float32)
        mask = np.zeros((len(self._peer_groups), MAX_PEERS), bool)
        for row, name in enumerate(self._peer_groups):
            if name not in table:
                raise EpisodeReadError(f'{where}: {PEERS_ATTRIBUTE} has no group {name!r} '
                                       f'(it has {sorted(table)})')
            positions = np.asarray(table[name], np.float32).reshape(-1, 3)
            if len(positions) > MAX_PEERS:
                raise EpisodeReadError(f'{where}: {len(positions)} {name} peers, at most '
                                       f'{MAX_PEERS}')
            peers[row, :len(positions)] = positions
            mask[row, :len(positions)] = True
        return peers, mask

    # --- lazy per-process handles -----------------------------------------------------------

    def _frames_of(self, episode_index: int) -> h5py.Dataset:
        pid = os.getpid()
        if self._owner_pid != pid:
            # Handles inherited through fork belong to the parent: start afresh here.
            self._readers, self._frames, self._owner_pid = {}, OrderedDict(), pid
        if episode_index in self._frames:
            self._frames.move_to_end(episode_index)
            return self._frames[episode_index]
        episode = self._episodes[episode_index]
        reader = self._readers.get(episode.path_index)
        if reader is None:
            reader = EpisodeReader(self._paths[episode.path_index])
            self._readers[episode.path_index] = reader
        frames = reader.demo_group(episode.name)['obs'][self._image_key]
        self._frames[episode_index] = frames
        if len(self._frames) > _MAX_OPEN_EPISODES:
            self._frames.popitem(last=False)  # Its episode file closes with the last reference.
        return frames

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_readers={}, _frames=OrderedDict(), _owner_pid=None, _frame_cache=None,
                     _cached=None)
        return state

    def close(self) -> None:
        """Close the files this process opened."""
        self._frames = OrderedDict()
        for reader in self._readers.values():
            reader.close()
        self._readers = {}

    # --- Dataset API ------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> dict[str, object]:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} steps')
        episode_index = int(np.searchsorted(self._starts, index, side='right')) - 1
        episode = self._episodes[episode_index]
        step = index - int(self._starts[episode_index])
        first = step + self._action_offset
        future = np.arange(first, first + self._chunk_size)
        item: dict[str, object] = {
            'image': self._image(index, episode_index, step),
            'instruction': episode.instruction,
            'actions': torch.from_numpy(episode.actions[np.minimum(future, episode.length - 1)]),
            'action_mask': torch.from_numpy(future < episode.length),
        }
        if episode.proprio is not None:
            item['proprio'] = torch.from_numpy(episode.proprio[step].copy())
        if episode.segment_ends is not None:
            current = min(first, episode.length - 1)
            end = episode.segment_ends[current]
            item['subgoal'] = torch.from_numpy(episode.actions[end].copy())
            item['subgoal_segment'] = int(episode.segment_indices[current])
            if self._segment_subgoals:
                item.update(self._segment_subgoal_items(episode, item['subgoal_segment']))
            if episode.peers is not None:
                first_segment = item['subgoal_segment'] == 0
                item['peer_positions'] = torch.from_numpy(episode.peers)
                item['peer_mask'] = torch.from_numpy(episode.peer_mask & first_segment)
        return item

    def _segment_subgoal_items(self, episode: _EpisodeRef,
                               current_segment: int) -> dict[str, torch.Tensor]:
        """Return the ``segment_subgoals`` and ``segment_subgoal_mask`` entries of an item."""
        count = self._segment_subgoals
        first = min(int(episode.segment_indices[0]), count)  # FIRST_SEGMENT_ATTRIBUTE
        last_steps = episode.segment_last_steps()[:count - first]
        subgoals = np.zeros((count, episode.actions.shape[1]), dtype=np.float32)
        subgoals[first:first + last_steps.size] = episode.actions[last_steps]
        segments = np.arange(count)
        mask = (segments < first + last_steps.size) & (segments >= current_segment)
        return {'segment_subgoals': torch.from_numpy(subgoals),
                'segment_subgoal_mask': torch.from_numpy(mask)}

    def _image(self, index: int, episode_index: int, step: int) -> torch.Tensor:
        """Return the prepared image of a step, from the frame cache when it is on."""
        if not self._cache_frames:
            return self._prepare_image(self._frames_of(episode_index)[step])
        if self._frame_cache is None:
            side = self._image_size
            # Channels first, as items are; np.zeros maps untouched pages lazily: memory grows
            # as frames are read.
            self._frame_cache = np.zeros((len(self), 3, side, side), dtype=np.uint8)
            self._cached = np.zeros(len(self), dtype=bool)
        if not self._cached[index]:
            image = self._prepare_image(self._frames_of(episode_index)[step])
            self._frame_cache[index] = (image * 255.0).round().to(torch.uint8).numpy()
            self._cached[index] = True
        return torch.from_numpy(self._frame_cache[index]).float().div_(255.0)

    def _prepare_image(self, frame: np.ndarray) -> torch.Tensor:
        if self._image_crop is not None:
            frame = self._image_crop.apply(frame)
        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 255.0
        size = tuple(image.shape[1:]) if self._image_size is None else (self._image_size,) * 2
        if self._augment:
            image = random_resized_crop(image, _CROP_SCALE)
        image = resize(image, size)
        if self._augment:
            image = color_jitter(image, _BRIGHTNESS, _CONTRAST)
        return image.clamp(0.0, 1.0).contiguous()

    # --- whole-dataset views ----------------------------------------------------------------

    @property
    def image_key(self) -> str:
        """Return the observation key the images come from."""
        return self._image_key

    @property
    def action_dim(self) -> int:
        """Return D, the length of one action."""
        return self._episodes[0].actions.shape[1]

    @property
    def num_episodes(self) -> int:
        """Return the number of episodes in this split."""
        return len(self._episodes)

    def all_actions(self) -> np.ndarray:
        """Every action of the split, (N, D) float32, e.g. for normalisation statistics."""
        return np.concatenate([ep.actions for ep in self._episodes], axis=0)

    def instructions(self) -> list[str]:
        """Return the instruction of every episode, in dataset order (duplicates kept)."""
        return [ep.instruction for ep in self._episodes]
