"""
The training loop of the custom VLA: data, normalisation, optimiser, checkpoints, resume.

One ``Trainer`` runs the same way in one process and under ``torchrun`` (see ``distributed``):
each process reads its shard of every epoch, gradients are averaged by
DistributedDataParallel, and only rank 0 prints and writes files.

Output directory::

    train_config.yaml               # the resolved TrainingConfig of the run
    checkpoint-<step>/              # save_checkpoint files + training_state.pt (resume state)
    last_checkpoint                 # text: the name of the newest complete checkpoint-<step>
    final/                          # save_checkpoint files of the last step

A checkpoint is written under a temporary name and renamed when complete, and ``last_checkpoint``
is replaced atomically, so an interrupted save never becomes the one resumed from.  Resuming
restores weights, statistics, optimiser, schedule, step, data position and RNG states: with
``num_workers: 0`` the resumed run repeats the uninterrupted one exactly; with workers and
augmentation the augmentation draws differ, everything else continues.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import functools
import math
import os
from pathlib import Path
import random
import shutil
import sys
import time
from typing import Any, Iterator

from humanoid_vla.actions import ActionSpec
from humanoid_vla.camera_projection import PinholeCamera
from humanoid_vla.checkpoint import load_checkpoint, save_checkpoint
from humanoid_vla.data.dataset import EpisodeDataset
from humanoid_vla.data.episode_reader import EpisodeReader
from humanoid_vla.models import CustomVLAModel
from humanoid_vla.models.modeling_custom_vla import targeted_pairs
from humanoid_vla.normalization import NormalizationStats
from humanoid_vla.training.config import TrainingConfig, TrainingConfigError
from humanoid_vla.training.distributed import (
    all_gather_objects,
    all_reduce_sum,
    barrier,
    DistributedContext,
    init_distributed,
    shutdown,
)
from humanoid_vla.training.precision import emulated_bf16_warning, resolve_precision
import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from transformers.utils import logging as transformers_logging

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is optional
    tqdm = None

TRAINING_STATE_FILENAME = 'training_state.pt'
LAST_CHECKPOINT_FILENAME = 'last_checkpoint'
CONFIG_RECORD_FILENAME = 'train_config.yaml'
FINAL_DIRNAME = 'final'
CHECKPOINT_PREFIX = 'checkpoint-'
_WARM_BATCH = 64  # instructions encoded per call when filling the cache


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """Seed NumPy and ``random`` of a DataLoader worker from the seed torch gave it."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def warmup_cosine(step: int, warmup_steps: int, max_steps: int) -> float:
    """
    Return the learning-rate factor of step ``step`` (0-based).

    Linear warmup to 1 over ``warmup_steps`` (the first step already learns), then a cosine
    decay that reaches 0 at ``max_steps``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def grounding_targets(camera: PinholeCamera, positions: np.ndarray, segments: np.ndarray,
                      maps: int) -> tuple[np.ndarray, np.ndarray]:
    """
    Return each subgoal's image position (B, 2) and the grounding map it trains (B,).

    Segment k trains map k; later segments (the retreat after a release) and subgoals outside
    the image train none (-1).
    """
    targets = camera.project(positions).astype(np.float32)
    inside = np.isfinite(targets).all(axis=1) & (np.abs(targets) <= 1.0).all(axis=1)
    segments = np.asarray(segments, dtype=np.int64)
    target_maps = np.where(inside & (segments < maps), segments, -1)
    return np.nan_to_num(targets), target_maps


def segment_grounding_targets(camera: PinholeCamera, positions: np.ndarray, mask: np.ndarray,
                              maps: int) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the image positions (B, N, 2) of every segment's subgoal and the maps they train.

    ``positions`` (B, N, 3) are the subgoals of segments 0..N-1 and ``mask`` (B, N) marks the
    ones still ahead of each item: segment k trains map k where the mask holds, the subgoal is
    in the image and k < ``maps``; -1 elsewhere.
    """
    batch, count = mask.shape
    segments = np.where(mask, np.arange(count)[None, :], maps)
    targets, target_maps = grounding_targets(
        camera, positions.reshape(batch * count, -1), segments.reshape(-1), maps)
    return targets.reshape(batch, count, 2), target_maps.reshape(batch, count)


def peer_grounding_targets(camera: PinholeCamera, positions: np.ndarray, mask: np.ndarray,
                           first_map: int) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the image positions (B, G*K, 2) of every peer and the map each trains.

    ``positions`` (B, G, K, 3) and ``mask`` (B, G, K) come from the dataset's
    ``peer_positions`` / ``peer_mask``; group g trains map ``first_map + g`` (its several
    targets make that map's cross-entropy a mixture: it learns to light up all of them); masked
    or out-of-image peers train none (-1).
    """
    batch, groups, count = mask.shape
    segments = np.where(mask, np.arange(groups)[None, :, None], groups)
    targets, target_maps = grounding_targets(
        camera, positions.reshape(-1, 3), segments.reshape(-1), groups)
    target_maps = np.where(target_maps >= 0, target_maps + first_map, -1)
    return targets.reshape(batch, groups * count, 2), target_maps.reshape(batch, groups * count)


def grounding_error_sum(
        positions: torch.Tensor, targets: torch.Tensor, target_maps: torch.Tensor
) -> torch.Tensor:
    """
    Return (sum of distances, count) between each targeted map's peak and its target.

    Distances are in normalised image units (2 = the image width); targets without a map (-1)
    do not count.  ``targets`` / ``target_maps`` are ``(B, 2)`` / ``(B,)`` or ``(B, N, 2)`` /
    ``(B, N)``, as :meth:`GroundingMaps.loss` takes them.
    """
    rows, maps, wanted = targeted_pairs(targets, target_maps)
    if rows.numel() == 0:
        return torch.zeros(2, dtype=torch.float64, device=targets.device)
    distances = (positions[rows, maps].double() - wanted.double()).norm(dim=-1)
    return torch.stack([distances.sum(), distances.new_tensor(float(rows.numel()))])


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**63


def checkpoint_step(path: Path) -> int | None:
    """Return the step of a ``checkpoint-<step>`` directory name, None for anything else."""
    name = path.name
    if not name.startswith(CHECKPOINT_PREFIX) or not name[len(CHECKPOINT_PREFIX):].isdigit():
        return None
    return int(name[len(CHECKPOINT_PREFIX):])


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Return the complete ``checkpoint-<step>`` directories of a run, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None
             and (p / TRAINING_STATE_FILENAME).is_file()]
    return sorted(found, key=checkpoint_step)


def find_last_checkpoint(output_dir: str | Path) -> Path | None:
    """Return the checkpoint ``last_checkpoint`` names, else the newest complete one, else None."""
    root = Path(output_dir)
    pointer = root / LAST_CHECKPOINT_FILENAME
    if pointer.is_file():
        target = root / pointer.read_text().strip()
        if (target / TRAINING_STATE_FILENAME).is_file():
            return target
    found = list_checkpoints(root)
    return found[-1] if found else None


def _rng_state() -> dict[str, Any]:
    """Return this process's RNG states in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        'python': random.getstate(),
        'numpy': (kind, keys.tolist(), int(pos), int(has_gauss), float(cached)),
        'torch': torch.get_rng_state(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state['python']))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _as_tuple(value: Any) -> Any:
    """Turn lists back into the nested tuples ``random.setstate`` insists on."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value


@contextlib.contextmanager
def _no_transformers_bars() -> Iterator[None]:
    """Silence transformers' bars (writing and loading weights), which would cut our own."""
    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def _split_size(paths: list[Path], split: str, successful_only: bool = False) -> int:
    total = 0
    for path in paths:
        with EpisodeReader(path) as reader:
            names = reader.split(split)
            total += sum(reader.success(n) for n in names) if successful_only else len(names)
    return total


class _ResumableSampler(DistributedSampler):
    """
    This process's shard of a seeded per-epoch shuffle, optionally skipping its first samples.

    The order depends on (seed, epoch) only, so a resumed run finds the rest of the epoch by
    skipping what was consumed instead of reading it.  Works without a process group.
    """

    def __init__(self, dataset: EpisodeDataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


class _Progress:
    """A tqdm bar when tqdm is installed, else a line every ``log_every`` steps."""

    def __init__(self, enabled: bool, total: int, initial: int) -> None:
        self.enabled = enabled
        self.bar = None
        if enabled and tqdm is not None:
            self.bar = tqdm(total=total, initial=initial, desc='train', dynamic_ncols=True,
                            file=sys.stderr)
        self.total = total

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def report(self, step: int, loss: float, lr: float, samples_per_s: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(loss=f'{loss:.4f}', lr=f'{lr:.2e}',
                                 samples_s=f'{samples_per_s:.1f}', refresh=False)
        else:
            print(f'step {step}/{self.total}  loss {loss:.4f}  lr {lr:.2e}  '
                  f'{samples_per_s:.1f} samples/s', flush=True)

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class TrainingSummary:
    """What ``Trainer.train`` did: the steps, their losses and where the result went."""

    step: int
    losses: list[float] = field(default_factory=list)
    valid_losses: list[tuple[int, float]] = field(default_factory=list)
    final_checkpoint: Path | None = None
    samples_per_second: float = 0.0


class Trainer:
    """
    Train a :class:`CustomVLAModel` as a :class:`TrainingConfig` says (module docstring).

    ``losses`` holds the training loss of every step (averaged over processes), in normalised
    action units; ``valid_losses`` the (step, validation loss) pairs.  ``resume`` continues from
    the newest checkpoint in ``output_dir`` (and starts afresh, saying so, when there is none);
    without it an ``output_dir`` that already holds checkpoints is refused.
    """

    def __init__(self, config: TrainingConfig, resume: bool = False,
                 show_progress: bool = True) -> None:
        self.config = config
        self.dist: DistributedContext = init_distributed(config.device)
        try:
            self._setup(resume, show_progress)
        except BaseException:
            shutdown(self.dist)
            raise

    # --- setup ------------------------------------------------------------------------------

    def _setup(self, resume: bool, show_progress: bool) -> None:
        config = self.config
        self.device = self.dist.device
        self.show_progress = show_progress and self.dist.is_main
        self.output_dir = Path(config.output_dir).expanduser().resolve()
        self.spec: ActionSpec = config.action_spec
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.losses: list[float] = []
        self.valid_losses: list[tuple[int, float]] = []
        self.valid_grounding_error: float | None = None
        self._messages: list[str] = []
        resume_dir = find_last_checkpoint(self.output_dir) if resume else None
        if resume and resume_dir is None:
            self._message(f'nothing to resume in {self.output_dir}: starting from step 0')
        if not resume and (list_checkpoints(self.output_dir)
                           or (self.output_dir / FINAL_DIRNAME).exists()):
            raise FileExistsError(
                f'{self.output_dir} already holds checkpoints of a run; pass --resume to '
                'continue it or choose another output_dir')
        seed_everything(config.seed)
        self._camera = config.camera
        # Maps below this learn subgoals; the rest, one per peer group, the peers.
        self._subgoal_maps = (config.build_model_config().grounding_maps
                              - len(config.grounding_peer_groups))
        self.precision = resolve_precision(config.precision, self.device)
        warning = emulated_bf16_warning(config.precision, self.device)
        if warning:
            self._message(warning)

        paths = [Path(p).expanduser().resolve() for p in config.data]
        self.data_paths = paths
        model_config = config.build_model_config()
        image_size = model_config.image_size
        # Each frame trains the maps of every segment still ahead, or only its own.
        segment_subgoals = model_config.grounding_maps if config.grounding_upcoming else 0
        self.train_data = EpisodeDataset(
            paths, split='train', image_key=config.image_key, chunk_size=config.chunk_size,
            image_size=image_size, augment=config.augment, proprio_key=config.proprio_key,
            action_offset=config.action_offset, successful_only=config.successful_only,
            subgoal_dim=config.subgoal_dim, segment_subgoals=segment_subgoals,
            cache_frames=config.cache_frames, peer_groups=config.grounding_peer_groups,
            image_crop=model_config.crop)
        self.spec.check_dim(self.train_data.action_dim, f'actions in {", ".join(map(str, paths))}')
        self.valid_data = None
        if _split_size(paths, 'valid', config.successful_only) > 0:
            self.valid_data = EpisodeDataset(
                paths, split='valid', image_key=self.train_data.image_key,
                chunk_size=config.chunk_size, image_size=image_size, augment=False,
                proprio_key=config.proprio_key, action_offset=config.action_offset,
                successful_only=config.successful_only, subgoal_dim=config.subgoal_dim,
                segment_subgoals=segment_subgoals, cache_frames=config.cache_frames,
                peer_groups=config.grounding_peer_groups, image_crop=model_config.crop)
        proprio_dim = None
        if config.proprio_key is not None:
            proprio_dim = int(self.train_data[0]['proprio'].shape[0])
        model_config = config.build_model_config(proprio_dim=proprio_dim)

        if resume_dir is not None:
            with _no_transformers_bars():
                loaded = load_checkpoint(resume_dir, device=self.device)
            self._check_resumable(resume_dir, loaded.spec, loaded.model, model_config)
            self.model: CustomVLAModel = loaded.model
            self.stats: NormalizationStats = loaded.stats
        else:
            self.model = CustomVLAModel(model_config).to(self.device)
            self.stats = NormalizationStats.from_actions(
                self.train_data.all_actions(), mask=~self.spec.gripper_mask())
            if self.model.map_anchors is not None:
                scale, shift = self.stats.affine(slice(0, 2))
                self.model.map_anchors.set_normalization(torch.from_numpy(scale),
                                                         torch.from_numpy(shift))
        self.model.train()
        self.paraphrases = config.paraphrase_table() if config.use_instruction else None
        self._warm_instruction_cache()

        self._trainable = [p for p in self.model.parameters() if p.requires_grad]
        decay = [p for p in self._trainable if p.ndim >= 2]
        no_decay = [p for p in self._trainable if p.ndim < 2]  # biases and norms
        self.optimizer = torch.optim.AdamW(
            [{'params': decay, 'weight_decay': config.weight_decay},
             {'params': no_decay, 'weight_decay': 0.0}],
            lr=config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, functools.partial(
                warmup_cosine, warmup_steps=config.warmup_steps, max_steps=config.max_steps))
        self._ddp_model: torch.nn.Module = self.model
        if self.dist.enabled:
            # static_graph: CLIP's pooler LayerNorm gets no gradient, the same every step.
            self._ddp_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == 'cuda' else None,
                static_graph=True)

        self._build_loaders()
        if resume_dir is not None:
            self._load_training_state(resume_dir)
        # Ranks share the model's initialisation above, but not their dropout or augmentation.
        elif self.dist.rank:
            seed_everything(config.seed + self.dist.rank)
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            config.save_yaml(self.output_dir / CONFIG_RECORD_FILENAME)
        self._batches = self._train_batches()

    def _check_resumable(self, directory: Path, spec: ActionSpec, model: CustomVLAModel,
                         expected: Any) -> None:
        if spec != self.spec:
            raise TrainingConfigError(
                f'cannot resume from {directory}: it was trained for action parts '
                f'{list(spec.parts)}, the config asks for {list(self.spec.parts)}')
        skip = {'vision_pretrained_path'}
        changed = [name for name in type(expected).__annotations__ if name not in skip
                   and getattr(model.config, name) != getattr(expected, name)]
        if changed:
            raise TrainingConfigError(
                f'cannot resume from {directory}: the model config changed in {changed}')

    def _warm_instruction_cache(self) -> None:
        """Encode every distinct instruction (and paraphrase) once, in a cache that keeps all."""
        if self.config.use_instruction:
            texts = set(self.train_data.instructions())
            if self.paraphrases is not None:
                texts = self.paraphrases.all_variants(texts)
            if self.valid_data is not None:
                texts.update(self.valid_data.instructions())
        else:
            texts = {''}
        distinct = sorted(texts)
        cache = self.model.instruction_cache
        cache.max_size = max(cache.max_size, len(distinct) + 1)
        for start in range(0, len(distinct), _WARM_BATCH):
            self.model.encode_instructions(distinct[start:start + _WARM_BATCH])

    def _build_loaders(self) -> None:
        config = self.config
        workers = config.num_workers
        common = {
            'batch_size': config.batch_size,
            'num_workers': workers,
            'pin_memory': self.device.type == 'cuda',
            'worker_init_fn': seed_worker,
            'persistent_workers': workers > 0,
        }
        self._sampler = _ResumableSampler(
            self.train_data, self.dist.world_size, self.dist.rank, config.seed)
        # Seeded per epoch; also keeps DataLoader from drawing worker seeds from the global RNG.
        self._loader_generator = torch.Generator()
        self._loader = DataLoader(self.train_data, sampler=self._sampler,
                                  generator=self._loader_generator, **common)
        self._valid_loader = None
        if self.valid_data is not None:
            sampler = None
            if self.dist.enabled:
                sampler = DistributedSampler(self.valid_data, self.dist.world_size,
                                             self.dist.rank, shuffle=False)
            self._valid_loader = DataLoader(
                self.valid_data, sampler=sampler,
                generator=torch.Generator().manual_seed(config.seed), **common)

    def _train_batches(self) -> Iterator[dict[str, Any]]:
        """Yield batches forever, epoch after epoch, keeping track of the position for resume."""
        while True:
            self._sampler.set_epoch(self.epoch)
            self._sampler.skip = self.batch_in_epoch * self.config.batch_size
            self._loader_generator.manual_seed(_epoch_seed(self.config.seed, self.epoch))
            for batch in self._loader:
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    # --- one step ---------------------------------------------------------------------------

    def model_inputs(self, batch: dict[str, Any],
                     paraphrase: bool = False) -> dict[str, torch.Tensor]:
        """
        Turn a DataLoader batch into model arguments, actions normalised with the run's stats.

        Instruction states come from the model's cache (filled at setup), so the frozen
        language encoder never runs inside the loop.  ``paraphrase`` rewrites instructions
        with the run's paraphrase table, drawn from (seed, step, rank) so a resumed run
        repeats the uninterrupted one.
        """
        texts = list(batch['instruction'])
        if not self.config.use_instruction:
            texts = [''] * len(texts)
        elif paraphrase and self.paraphrases is not None:
            rng = np.random.default_rng([self.config.seed % 2**32, self.step, self.dist.rank])
            texts = self.paraphrases.rewrite(texts, rng)
        tokens, mask = self.model.encode_instructions(texts)
        actions = self.stats.normalize(batch['actions'].numpy()).astype(np.float32)
        inputs = {
            'pixel_values': batch['image'].to(self.device, non_blocking=True),
            'instruction_embeddings': tokens,
            'attention_mask': mask,
            'actions': torch.from_numpy(actions).to(self.device, non_blocking=True),
            'action_mask': batch['action_mask'].to(self.device, non_blocking=True),
        }
        if 'proprio' in batch:
            inputs['proprio'] = batch['proprio'].to(self.device, non_blocking=True)
        if 'subgoal' in batch:
            subgoal = self.stats.normalize(batch['subgoal'].numpy()).astype(np.float32)
            inputs['subgoal_actions'] = torch.from_numpy(subgoal).to(self.device,
                                                                     non_blocking=True)
        grounding = self._grounding_batch(batch)
        if grounding is not None:
            inputs['grounding_targets'], inputs['grounding_target_maps'] = (
                torch.from_numpy(part).to(self.device) for part in grounding)
        return inputs

    def _grounding_batch(
            self, batch: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """Return a batch's grounding targets and the maps they train (None without maps)."""
        camera = self._camera
        if camera is None:
            return None
        position = self.config.subgoal_position_slice
        maps = self._subgoal_maps
        if 'segment_subgoals' in batch:
            targets, target_maps = segment_grounding_targets(
                camera, batch['segment_subgoals'].numpy()[:, :, position],
                batch['segment_subgoal_mask'].numpy(), maps)
        else:
            targets, target_maps = grounding_targets(
                camera, batch['subgoal'].numpy()[:, position], batch['subgoal_segment'].numpy(),
                maps)
        if not self.config.grounding_peer_groups:
            return targets, target_maps
        if target_maps.ndim == 1:
            targets, target_maps = targets[:, None], target_maps[:, None]
        peers, peer_maps_of = peer_grounding_targets(
            camera, batch['peer_positions'].numpy(), batch['peer_mask'].numpy(), maps)
        return (np.concatenate([targets, peers], axis=1),
                np.concatenate([target_maps, peer_maps_of], axis=1))

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.precision == 'bf16')

    def train_step(self, batch: dict[str, Any]) -> torch.Tensor:
        """Run one optimisation step on ``batch``; return its loss (detached, not synced)."""
        inputs = self.model_inputs(batch, paraphrase=True)
        with self._autocast():
            loss = self._ddp_model(**inputs).loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self._trainable, self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.detach()

    # --- the loop ---------------------------------------------------------------------------

    def run(self, num_steps: int) -> list[float]:
        """
        Run up to ``num_steps`` more steps (never past ``max_steps``) and return their losses.

        Validation and periodic checkpoints happen on their schedule; the final checkpoint is
        ``train``'s job.
        """
        config = self.config
        target = min(self.step + max(0, int(num_steps)), config.max_steps)
        progress = _Progress(self.show_progress, config.max_steps, self.step)
        for message in self._messages:
            progress.write(message)
        self._messages.clear()
        self.model.train()
        first = len(self.losses)
        window: list[torch.Tensor] = []
        window_samples = 0
        window_start = time.perf_counter()
        try:
            while self.step < target:
                batch = next(self._batches)
                window.append(self.train_step(batch))
                window_samples += len(batch['instruction'])
                progress.advance()
                if self.step % config.log_every == 0 or self.step == target:
                    values = all_reduce_sum(torch.stack(window).float(), self.dist)
                    values = (values / self.dist.world_size).tolist()
                    self.losses.extend(values)
                    elapsed = time.perf_counter() - window_start
                    rate = window_samples * self.dist.world_size / max(elapsed, 1e-9)
                    progress.report(self.step, float(np.mean(values)),
                                    self.scheduler.get_last_lr()[0], rate)
                    window, window_samples = [], 0
                    window_start = time.perf_counter()
                if config.eval_every and self.step % config.eval_every == 0:
                    valid_loss = self.evaluate()
                    if valid_loss is not None:
                        progress.write(f'step {self.step}: validation loss {valid_loss:.4f}'
                                       + self._grounding_note())
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    path = self.save_checkpoint()
                    if path is not None:
                        progress.write(f'step {self.step}: saved {path}')
        finally:
            progress.close()
        return self.losses[first:]

    def train(self) -> TrainingSummary:
        """Run until ``max_steps``, then write ``output_dir/final``."""
        start_step = self.step
        start = time.perf_counter()
        losses = self.run(self.config.max_steps - self.step)
        elapsed = time.perf_counter() - start
        final = self.save_final()
        if self.dist.is_main and self.show_progress:
            print(f'trained steps {start_step}..{self.step} in {elapsed:.1f} s; final '
                  f'checkpoint {final}', flush=True)
        samples = (self.step - start_step) * self.config.batch_size * self.dist.world_size
        return TrainingSummary(
            step=self.step, losses=losses, valid_losses=list(self.valid_losses),
            final_checkpoint=final, samples_per_second=samples / max(elapsed, 1e-9))

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """
        Return the valid split's action error, or None.

        The mean L1 of the predicted actions (normalised units, all processes): the training
        loss of the default L1 head, and comparable with it for MSE and binned heads.
        """
        if self._valid_loader is None:
            return None
        self.model.eval()
        total = torch.zeros(4, dtype=torch.float64, device=self.device)
        try:
            for batch in self._valid_loader:
                inputs = self.model_inputs(batch)
                with self._autocast():
                    output = self.model(**inputs)
                weight = inputs['action_mask'].sum() * self.spec.dim
                total[0] += output.action_error.double() * weight
                total[1] += weight
                if 'grounding_targets' in inputs:
                    # The peer maps spread over several objects: their peak is no answer.
                    subgoal_maps = inputs['grounding_target_maps'].masked_fill(
                        inputs['grounding_target_maps'] >= self._subgoal_maps, -1)
                    total[2:] += grounding_error_sum(
                        output.grounding_positions, inputs['grounding_targets'], subgoal_maps)
        finally:
            self.model.train()
        all_reduce_sum(total, self.dist)
        value = float(total[0] / total[1].clamp_min(1.0))
        self.valid_losses.append((self.step, value))
        self.valid_grounding_error = None
        if total[3] > 0:
            self.valid_grounding_error = float(total[2] / total[3])
        return value

    def _grounding_note(self) -> str:
        """Return ', grounding error N px' after a validation with grounding maps, else ''."""
        error = self.valid_grounding_error
        if error is None:
            return ''
        pixels = error * self.model.config.image_size / 2.0
        return f', grounding error {pixels:.1f} px of {self.model.config.image_size}'

    # --- checkpoints ------------------------------------------------------------------------

    def training_summary(self) -> dict[str, Any]:
        """Return what a checkpoint's ``training_args.json`` records about the run so far."""
        recent = self.losses[-self.config.log_every:]
        return {
            'step': self.step,
            'max_steps': self.config.max_steps,
            'epoch': self.epoch,
            'train_loss': float(np.mean(recent)) if recent else None,
            'valid_loss': self.valid_losses[-1][1] if self.valid_losses else None,
            'world_size': self.dist.world_size,
            'use_instruction': self.config.use_instruction,
            'image_key': self.train_data.image_key,
            'proprio_key': self.config.proprio_key,
            'action_offset': self.config.action_offset,
            'successful_only': self.config.successful_only,
            'precision': self.precision,
            'unsuccessful_episodes_skipped': self.train_data.num_unsuccessful_skipped + (
                self.valid_data.num_unsuccessful_skipped if self.valid_data else 0),
            'num_train_steps_in_data': len(self.train_data),
            'num_valid_steps_in_data': len(self.valid_data) if self.valid_data else 0,
            'data': [str(p) for p in self.data_paths],
            'config': self.config.to_dict(),
        }

    def save_checkpoint(self) -> Path | None:
        """
        Write ``checkpoint-<step>`` with its resume state; return its path on rank 0.

        Every process must call it (their RNG states are gathered into the checkpoint).
        """
        rng_states = all_gather_objects(_rng_state(), self.dist)
        barrier(self.dist)
        path = None
        if self.dist.is_main:
            path = self.output_dir / f'{CHECKPOINT_PREFIX}{self.step}'
            partial = path.with_name(path.name + '.partial')
            shutil.rmtree(partial, ignore_errors=True)
            with _no_transformers_bars():
                save_checkpoint(partial, self.model, self.stats, self.spec,
                                extra=self.training_summary())
            torch.save({
                'step': self.step,
                'epoch': self.epoch,
                'batch_in_epoch': self.batch_in_epoch,
                'batch_size': self.config.batch_size,
                'world_size': self.dist.world_size,
                'optimizer': self.optimizer.state_dict(),
                'scheduler': self.scheduler.state_dict(),
                'losses': list(self.losses),
                'valid_losses': [list(pair) for pair in self.valid_losses],
                'rng': rng_states,
            }, partial / TRAINING_STATE_FILENAME)
            shutil.rmtree(path, ignore_errors=True)
            os.replace(partial, path)
            pointer = self.output_dir / (LAST_CHECKPOINT_FILENAME + '.tmp')
            pointer.write_text(path.name + '\n')
            os.replace(pointer, self.output_dir / LAST_CHECKPOINT_FILENAME)
            self._prune_checkpoints(keep=path)
        barrier(self.dist)
        return path

    def _prune_checkpoints(self, keep: Path) -> None:
        limit = self.config.keep_last_checkpoints
        if limit <= 0:
            return
        found = [p for p in list_checkpoints(self.output_dir) if p != keep]
        for old in found[:max(0, len(found) - (limit - 1))]:
            shutil.rmtree(old, ignore_errors=True)

    def save_final(self) -> Path:
        """Write ``output_dir/final`` (weights, stats, spec, summary) and return its path."""
        path = self.output_dir / FINAL_DIRNAME
        barrier(self.dist)
        if self.dist.is_main:
            partial = path.with_name(path.name + '.partial')
            shutil.rmtree(partial, ignore_errors=True)
            with _no_transformers_bars():
                save_checkpoint(partial, self.model, self.stats, self.spec,
                                extra=self.training_summary())
            shutil.rmtree(path, ignore_errors=True)
            os.replace(partial, path)
        barrier(self.dist)
        return path

    def _load_training_state(self, directory: Path) -> None:
        state = torch.load(directory / TRAINING_STATE_FILENAME, map_location='cpu',
                           weights_only=True)
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.step = int(state['step'])
        self.losses = [float(v) for v in state.get('losses', [])]
        self.valid_losses = [(int(s), float(v)) for s, v in state.get('valid_losses', [])]
        same_layout = (state['world_size'] == self.dist.world_size
                       and state['batch_size'] == self.config.batch_size)
        if same_layout:
            self.epoch = int(state['epoch'])
            self.batch_in_epoch = int(state['batch_in_epoch'])
            _set_rng_state(state['rng'][self.dist.rank])
        else:
            # Another sharding of the data: continue at the next epoch with fresh seeds.
            self.epoch = int(state['epoch']) + 1
            self.batch_in_epoch = 0
            seed_everything(self.config.seed + self.dist.rank + self.step)
        self._message(f'resumed from {directory} at step {self.step}')

    def _message(self, text: str) -> None:
        """Queue a line for the next progress output (rank 0 only)."""
        if self.dist.is_main:
            self._messages.append(text)

    def close(self) -> None:
        """Release data files and leave the process group if this trainer joined it."""
        self.train_data.close()
        if self.valid_data is not None:
            self.valid_data.close()
        shutdown(self.dist)
