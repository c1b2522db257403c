"""
Training of the custom VLA: config, trainer (single process or torchrun DDP) and ``vla-train``.

``TrainingConfig`` says what to train (``config/train_custom_vla.yaml`` documents every field),
``Trainer`` does it and writes checkpoints that ``CustomVLAPolicy`` loads as they are.
"""

from humanoid_vla.training.config import TrainingConfig, TrainingConfigError
from humanoid_vla.training.distributed import DistributedContext, init_distributed
from humanoid_vla.training.trainer import (
    find_last_checkpoint,
    seed_everything,
    Trainer,
    TrainingSummary,
    warmup_cosine,
)

__all__ = [
    'DistributedContext',
    'find_last_checkpoint',
    'init_distributed',
    'seed_everything',
    'Trainer',
    'TrainingConfig',
    'TrainingConfigError',
    'TrainingSummary',
    'warmup_cosine',
]
