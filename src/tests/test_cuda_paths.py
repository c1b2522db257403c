"""
The custom VLA on a CUDA device: serving the default checkpoint and training in bf16 autocast.

Skipped where no CUDA device exists (CI, the 2-core development machines); run on a GPU machine
to check that the code paths the robot's GPU computer would take work and agree with the CPU.
"""

from pathlib import Path

from humanoid_vla.checkpoint import load_checkpoint
from humanoid_vla.data import EpisodeWriter
from humanoid_vla.policies import Observation
from humanoid_vla.policies.custom import CustomVLAPolicy
from humanoid_vla.training import Trainer, TrainingConfig
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

WORKSPACE = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = WORKSPACE / 'checkpoints' / 'default'
# Largest difference allowed between CUDA and CPU actions of the default checkpoint, in metres
# (and gripper units): cuDNN may run the convolutions in TF32, about 3 decimal digits.
CUDA_CPU_TOLERANCE = 2e-3
TINY_MODEL = {
    'image_size': 32, 'patch_size': 16, 'vision_hidden_size': 32, 'vision_layers': 1,
    'vision_heads': 2, 'vision_intermediate_size': 64, 'language_encoder': 'tiny',
    'tiny_language_hidden_size': 16, 'tiny_language_layers': 1, 'hidden_size': 32,
    'num_heads': 2, 'num_fusion_layers': 1, 'dropout': 0.0,
}


def observation(seed: int) -> Observation:
    """Return a camera frame and joint state the default checkpoint accepts."""
    rng = np.random.default_rng(seed)
    return Observation(image=rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8),
                       instruction='touch the red cup',
                       proprio=rng.normal(scale=0.3, size=43).astype(np.float32))


def test_default_checkpoint_acts_on_cuda_as_on_cpu():
    cpu = CustomVLAPolicy(DEFAULT_CHECKPOINT, device='cpu')
    cuda = CustomVLAPolicy(DEFAULT_CHECKPOINT, device='cuda')
    assert all(p.is_cuda for p in cuda.model.parameters())
    for seed in range(3):
        on_cpu = cpu.predict(observation(seed))
        on_cuda = cuda.predict(observation(seed))
        assert on_cuda.shape == on_cpu.shape == (cpu.chunk_size, cpu.action_spec.dim)
        difference = float(np.abs(on_cuda - on_cpu).max())
        assert difference < CUDA_CPU_TOLERANCE, (seed, difference)


def write_brightness_episodes(path: Path) -> Path:
    """Write episodes whose first action dimension is the frame's brightness."""
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, valid_fraction=0.0) as writer:
        for episode in range(6):
            writer.begin_episode('move left' if episode % 2 else 'move right')
            for step in range(16):
                brightness = float(rng.uniform())
                frame = np.full((16, 16, 3), round(brightness * 255), np.uint8)
                action = np.array([brightness, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0, 1.0], np.float32)
                writer.add_step({'front_rgb': frame}, action, 0.1 * step)
            writer.end_episode(True)
    return path


def test_training_on_cuda_autocasts_to_bf16_learns_and_saves_fp32(tmp_path):
    config = TrainingConfig(
        data=[str(write_brightness_episodes(tmp_path / 'moves.hdf5'))],
        output_dir=str(tmp_path / 'run'), model=dict(TINY_MODEL), batch_size=16,
        num_workers=0, max_steps=80, learning_rate=3e-3, warmup_steps=2, eval_every=0,
        checkpoint_every=0, log_every=2, device='cuda', precision='auto', augment=False)
    trainer = Trainer(config, show_progress=False)
    trainer.train()
    trainer.close()
    assert trainer.training_summary()['precision'] == 'bf16'
    assert {(p.dtype, p.is_cuda) for p in trainer.model.parameters()} == {(torch.float32, True)}
    first, last = np.mean(trainer.losses[:5]), np.mean(trainer.losses[-5:])
    assert last < 0.75 * first, (first, last)
    saved = load_checkpoint(tmp_path / 'run' / 'final')  # on the CPU, where robots may serve it
    assert {p.dtype for p in saved.model.parameters()} == {torch.float32}
    policy = CustomVLAPolicy(tmp_path / 'run' / 'final')
    actions = policy.predict(Observation(np.full((16, 16, 3), 200, np.uint8), 'move left'))
    assert np.all(np.isfinite(actions))
