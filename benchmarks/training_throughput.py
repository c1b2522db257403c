"""
Training throughput of the Trainer's step loop against a bare PyTorch loop, in one run.

Both loops train the default custom VLA (``config/model_custom_vla_default.yaml``) from the same
initial weights on the same generated HDF5 episodes, with the same DataLoader settings, batch
size, AdamW and action normalisation; the bare loop has no scheduler, clipping, logging, resume
bookkeeping or validation.  Rounds alternate between the two so that load from elsewhere on the
machine hits both alike.  Prints one line per round, then the medians and their ratio (the goal
is a Trainer at >= 0.9 of the bare loop), and the best round of each.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training_throughput.py [--rounds 5]``
"""

import argparse
from pathlib import Path
import statistics
import tempfile
import time
from typing import Callable, Iterator

from humanoid_vla.data import EpisodeWriter
from humanoid_vla.data.dataset import EpisodeDataset
from humanoid_vla.models import CustomVLAModel
from humanoid_vla.training import Trainer, TrainingConfig
import numpy as np
import torch
from torch.utils.data import DataLoader

MODEL_CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'model_custom_vla_default.yaml'
INSTRUCTIONS = ('pick up the red cube', 'put the cube in the bin', 'open the drawer')


def write_episodes(path: Path, episodes: int, length: int, frame: tuple[int, int]) -> None:
    """Write random frames whose actions depend on the frame and on the instruction."""
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, valid_fraction=0.0) as writer:
        for episode in range(episodes):
            writer.begin_episode(INSTRUCTIONS[episode % len(INSTRUCTIONS)])
            for step in range(length):
                image = rng.integers(0, 256, size=(*frame, 3), dtype=np.uint8)
                action = np.zeros(8, np.float32)
                action[:3] = image.mean(axis=(0, 1)) / 255.0 + episode % len(INSTRUCTIONS)
                action[6] = 1.0
                action[7] = float(step > length // 2)
                writer.add_step({'front_rgb': image}, action, 0.1 * step)
            writer.end_episode(True)


class BareLoop:
    """The minimal PyTorch training loop over the same model, data and normalisation."""

    def __init__(self, trainer: Trainer, initial_state: dict, num_workers: int) -> None:
        config = trainer.config
        self.model = CustomVLAModel(trainer.model.config)
        self.model.load_state_dict(initial_state)
        self.model.train()
        self.stats = trainer.stats
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=config.learning_rate, weight_decay=config.weight_decay)
        dataset = EpisodeDataset(config.data, split='train', chunk_size=config.chunk_size,
                                 image_size=self.model.config.image_size, augment=config.augment)
        self.loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True,
                                 num_workers=num_workers, persistent_workers=num_workers > 0,
                                 generator=torch.Generator().manual_seed(0))
        self.batches = self._forever()

    def _forever(self) -> Iterator[dict]:
        while True:
            yield from self.loader

    def run(self, steps: int) -> None:
        """Run ``steps`` optimisation steps."""
        for _ in range(steps):
            batch = next(self.batches)
            tokens, mask = self.model.encode_instructions(list(batch['instruction']))
            actions = torch.from_numpy(
                self.stats.normalize(batch['actions'].numpy()).astype(np.float32))
            loss = self.model(pixel_values=batch['image'], instruction_embeddings=tokens,
                              attention_mask=mask, actions=actions,
                              action_mask=batch['action_mask']).loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


def samples_per_second(run: Callable[[int], object], steps: int, batch_size: int) -> float:
    """Time ``run(steps)`` and return the training samples it processed per second."""
    start = time.perf_counter()
    run(steps)
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    """Build both loops, alternate timed rounds, print per-round rates, medians and ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--steps', type=int, default=8, help='optimisation steps per round')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--episodes', type=int, default=6)
    parser.add_argument('--length', type=int, default=24, help='steps per episode')
    parser.add_argument('--frame', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / 'episodes.hdf5'
        write_episodes(data, args.episodes, args.length, tuple(args.frame))
        config = TrainingConfig(
            data=[str(data)], output_dir=str(Path(directory) / 'run'), model=str(MODEL_CONFIG),
            batch_size=args.batch_size, num_workers=args.num_workers, max_steps=1_000_000,
            warmup_steps=10, eval_every=0, checkpoint_every=0, augment=False, device='cpu',
            log_every=args.steps, seed=0)
        trainer = Trainer(config, show_progress=False)
        bare = BareLoop(trainer, trainer.model.state_dict(), args.num_workers)
        print(f'threads: {torch.get_num_threads()}, batch: {args.batch_size}, workers: '
              f'{args.num_workers}, parameters: '
              f'{sum(p.numel() for p in trainer.model.parameters()) / 1e6:.2f} M, '
              f'train steps in data: {args.episodes * args.length}')
        trainer.run(2)  # warm up: first allocations, workers, instruction cache
        bare.run(2)
        rates: dict[str, list[float]] = {'trainer': [], 'bare': []}
        for index in range(args.rounds):
            rates['trainer'].append(samples_per_second(trainer.run, args.steps, args.batch_size))
            rates['bare'].append(samples_per_second(bare.run, args.steps, args.batch_size))
            print(f'round {index + 1}: trainer {rates["trainer"][-1]:.2f} samples/s, '
                  f'bare {rates["bare"][-1]:.2f} samples/s')
        trainer.close()
    trainer_median = statistics.median(rates['trainer'])
    bare_median = statistics.median(rates['bare'])
    print(f'trainer_step_loop: median {trainer_median:.2f} samples/s')
    print(f'bare_pytorch_loop: median {bare_median:.2f} samples/s')
    print(f'ratio trainer / bare: {trainer_median / bare_median:.3f} (goal >= 0.9)')
    # The fastest round of each is the one least disturbed by other work on the machine.
    best_trainer, best_bare = max(rates['trainer']), max(rates['bare'])
    print(f'best rounds: trainer {best_trainer:.2f}, bare {best_bare:.2f} samples/s, '
          f'ratio {best_trainer / best_bare:.3f}')


if __name__ == '__main__':
    main()
