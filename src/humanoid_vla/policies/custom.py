"""
The custom VLA as a policy: checkpoint in, robot-unit actions out.

Inference path: validate the observation -> resize the frame to the model's resolution
(bilinear, antialiased) -> cached instruction embedding -> model under ``torch.inference_mode``
-> optional ACT-style temporal ensembling (in normalised units) -> un-normalise with the
checkpoint's statistics.
"""

from collections import deque
from pathlib import Path
from typing import Any

from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.camera_projection import ImageCrop
from humanoid_vla.checkpoint import load_checkpoint
from humanoid_vla.policies.base import Observation, Policy, validate_observation
from humanoid_vla.policies.registry import register_policy
import numpy as np
import torch
import torch.nn.functional as F


class TemporalEnsembler:
    """
    Average the predictions overlapping the current step, as ACT does.

    With chunks of k actions, step t has up to k predictions: element i of the chunk predicted at
    step t - i.  They are weighted ``exp(-decay * n)`` where n = 0 is the oldest prediction, so a
    small ``decay`` (ACT's 0.01) trusts history and smooths, a large one follows new chunks.
    """

    def __init__(self, chunk_size: int, decay: float) -> None:
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        if decay < 0:
            raise ValueError(f'ensemble_decay must be >= 0, got {decay}')
        self.chunk_size = chunk_size
        self.decay = decay
        self._chunks: deque[tuple[int, np.ndarray]] = deque()
        self._step = 0

    def reset(self) -> None:
        """Drop all buffered chunks (new episode)."""
        self._chunks.clear()
        self._step = 0

    def update(self, chunk: np.ndarray) -> np.ndarray:
        """Add the chunk predicted now and return the ensembled (dim,) action for this step."""
        if chunk.ndim != 2 or chunk.shape[0] != self.chunk_size:
            raise ValueError(f'expected a ({self.chunk_size}, dim) chunk, got {chunk.shape}')
        self._chunks.append((self._step, chunk))
        while self._chunks and self._step - self._chunks[0][0] >= self.chunk_size:
            self._chunks.popleft()
        candidates = np.stack([c[self._step - start] for start, c in self._chunks])  # oldest 1st
        weights = np.exp(-self.decay * np.arange(len(candidates)))
        self._step += 1
        return (weights[:, None] * candidates).sum(axis=0) / weights.sum()


@register_policy('custom')
class CustomVLAPolicy(Policy):
    """
    Run a checkpoint written by ``humanoid_vla.checkpoint.save_checkpoint``.

    ``predict`` returns (chunk_size, dim) actions, or (1, dim) with ``temporal_ensembling``
    (one ensembled action per call; call ``reset`` at every episode start).  ``action_spec``,
    when given, must equal the checkpoint's spec.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        device: str | torch.device = 'cpu',
        temporal_ensembling: bool = False,
        ensemble_decay: float = 0.01,
        action_spec: Any = None,
    ) -> None:
        loaded = load_checkpoint(checkpoint, device=device)
        if action_spec is not None:
            expected = ActionSpec.from_config(action_spec)
            if expected != loaded.spec:
                raise ActionSpecMismatchError(
                    expected.dim,
                    loaded.spec.dim,
                    f'checkpoint {checkpoint} (parts {list(loaded.spec.parts)}, expected '
                    f'{list(expected.parts)})',
                    expected.parts,
                )
        self.model = loaded.model
        self.stats = loaded.stats
        self.action_spec = loaded.spec
        self.extra = loaded.extra
        # A language-blind baseline was trained with every instruction withheld; it must be
        # served the same way, or it would see input it never saw in training.
        self.use_instruction = bool((loaded.extra or {}).get('use_instruction', True))
        self.device = torch.device(device)
        self.config = self.model.config
        # The window of the camera frame the model sees (None: the whole frame), parsed once.
        self.image_crop: ImageCrop | None = self.config.crop
        self.proprio_dim = self.config.proprio_dim if self.config.use_proprio else None
        self.ensembler = None
        self.chunk_size = self.config.chunk_size
        if temporal_ensembling:
            self.ensembler = TemporalEnsembler(self.config.chunk_size, ensemble_decay)
            self.chunk_size = 1

    def reset(self) -> None:
        """Forget the ensembling history."""
        if self.ensembler is not None:
            self.ensembler.reset()

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """Turn an (H, W, 3) uint8 frame (its ``image_crop`` window) into (1, 3, S, S)."""
        crop = self.image_crop
        if crop is not None:
            image = crop.apply(image)
        pixels = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        pixels = pixels.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        size = self.config.image_size
        if pixels.shape[-2:] != (size, size):
            pixels = F.interpolate(
                pixels, size=(size, size), mode='bilinear', align_corners=False, antialias=True
            ).clamp_(0.0, 1.0)
        return pixels

    def predict_normalized(self, observation: Observation) -> np.ndarray:
        """Return the model's raw (chunk_size, dim) prediction in normalised units."""
        output = self._forward(observation)
        return output.predicted_actions[0].float().cpu().numpy().astype(np.float64)

    def predict_subgoal(self, observation: Observation) -> np.ndarray | None:
        """
        Return the subgoal head's (dim,) action in robot units, or None without that head.

        The subgoal is where the current gripper segment ends (the touch point, the grasp
        pose): what a probe of "does it reach for the named object" reads.
        """
        subgoal = self._forward(observation).predicted_subgoal
        if subgoal is None:
            return None
        normalized = subgoal[0].float().cpu().numpy().astype(np.float64)[None, :]
        return np.asarray(self.stats.unnormalize(normalized), dtype=np.float64)[0]

    def predict_grounding(self, observation: Observation) -> np.ndarray | None:
        """
        Return where each grounding map peaks, ``(maps, 2)`` normalised image (u, v), or None.

        Map 0 is where the model sees the object to touch or grasp, map 1 the place pose; a
        camera calibration turns them into table positions (see ``PinholeCamera``; with the
        model's ``image_crop``, positions are in that window: use ``camera.cropped(crop)``).
        """
        positions = self._forward(observation).grounding_positions
        if positions is None:
            return None
        return positions[0].float().cpu().numpy().astype(np.float64)

    def predict_grounding_maps(self, observation: Observation) -> np.ndarray | None:
        """Return the grounding maps ``(maps, H, W)``, each summing to 1, or None."""
        maps = self._forward(observation).grounding_probabilities
        if maps is None:
            return None
        return maps[0].float().cpu().numpy().astype(np.float64)

    def _forward(self, observation: Observation):
        """Run the model on one observation; return its CustomVLAOutput."""
        validate_observation(observation, proprio_dim=self.proprio_dim)
        text = observation.instruction if self.use_instruction else ''
        tokens, mask = self.model.encode_instructions([text])
        proprio = None
        if self.config.use_proprio:
            proprio = torch.as_tensor(
                np.asarray(observation.proprio, dtype=np.float32), device=self.device
            ).unsqueeze(0)
        with torch.inference_mode():
            return self.model(
                pixel_values=self.preprocess(observation.image),
                instruction_embeddings=tokens,
                attention_mask=mask,
                proprio=proprio,
            )

    def predict(self, observation: Observation) -> np.ndarray:
        """Return (chunk_size, dim) actions, or (1, dim) when ensembling, in robot units."""
        normalized = self.predict_normalized(observation)
        if self.ensembler is not None:
            normalized = self.ensembler.update(normalized)[None, :]
        return np.asarray(self.stats.unnormalize(normalized), dtype=np.float64)
