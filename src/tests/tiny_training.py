"""
A tiny custom VLA and a two-instruction dataset it learns in a few dozen steps.

Shared by the training, offline-evaluation and CUDA tests: the frame's brightness sets the
action's x (and the gripper), the instruction its y, so a model that learns at all lowers its
loss quickly, and one that ignores the image or the words is measurably worse.
"""

from pathlib import Path

from humanoid_vla.data import EpisodeWriter
import numpy as np

INSTRUCTIONS = ('move left', 'move right')
TINY_MODEL = {
    'image_size': 32, 'patch_size': 16, 'vision_hidden_size': 32, 'vision_layers': 1,
    'vision_heads': 2, 'vision_intermediate_size': 64, 'language_encoder': 'tiny',
    'tiny_language_hidden_size': 16, 'tiny_language_layers': 1, 'hidden_size': 32,
    'num_heads': 2, 'num_fusion_layers': 1, 'dropout': 0.0,
}


def target_action(brightness: float, instruction: str) -> np.ndarray:
    """Return the action to learn: x from the image, y from the instruction, fixed rest."""
    side = 0.5 if instruction == INSTRUCTIONS[0] else -0.5
    return np.array([brightness, side, 0.3, 0.0, 0.0, 0.0, 1.0, float(brightness > 0.5)],
                    np.float32)


def write_moves(path: Path, episodes: int = 8, length: int = 12, seed: int = 0,
                failed: tuple[int, ...] = (), valid_fraction: float = 0.25,
                action_dim: int = 8) -> Path:
    """Write episodes of uniform frames whose actions follow `target_action` (first dims)."""
    rng = np.random.default_rng(seed)
    with EpisodeWriter(path, valid_fraction=valid_fraction) as writer:
        for episode in range(episodes):
            instruction = INSTRUCTIONS[episode % 2]
            writer.begin_episode(instruction)
            for step in range(length):
                brightness = float(rng.uniform())
                frame = np.full((16, 16, 3), round(brightness * 255), np.uint8)
                writer.add_step({'front_rgb': frame},
                                target_action(brightness, instruction)[:action_dim], 0.1 * step)
            writer.end_episode(episode not in failed)
    return path
