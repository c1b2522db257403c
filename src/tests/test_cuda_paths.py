"""
The custom VLA on a CUDA device: serving the default checkpoint and training in bf16 autocast.

Skipped where no CUDA device exists (CI, the 2-core development machines); run on a GPU machine
to check that the code paths the robot's GPU computer would take work and agree with the CPU.
"""

from pathlib import Path

from humanoid_vla.checkpoint import load_checkpoint
from humanoid_vla.policies import Observation
from humanoid_vla.policies.custom import CustomVLAPolicy
from humanoid_vla.training import Trainer, TrainingConfig
import numpy as np
import pytest
import torch

from .tiny_training import TINY_MODEL, write_moves

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

WORKSPACE = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = WORKSPACE / 'checkpoints' / 'default'
# Largest difference allowed between CUDA and CPU actions of the default checkpoint, in metres
# (and gripper units): cuDNN may run the convolutions in TF32, about 3 decimal digits.
CUDA_CPU_TOLERANCE = 2e-3


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


def test_training_on_cuda_autocasts_to_bf16_learns_and_saves_fp32(tmp_path):
    # 200 steps: the same run on the CPU in bf16 ends at 0.09 of its first losses (0.61 after 80).
    data = write_moves(tmp_path / 'moves.hdf5', episodes=6, length=16, valid_fraction=0.0)
    config = TrainingConfig(
        data=[str(data)],
        output_dir=str(tmp_path / 'run'), model=dict(TINY_MODEL), batch_size=16,
        num_workers=0, max_steps=200, learning_rate=3e-3, warmup_steps=2, eval_every=0,
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
