"""
Training speed of a training config's recipe on one device, in optimisation steps per second.

Writes synthetic episodes shaped like the simulation recordings (224x224 ``obs/head_rgb``, 43
joint angles, right-hand pose + gripper actions, the simulation's instructions), then runs the
real ``Trainer`` with the config's model and settings on them: on CPU it says how long the
recipe takes on this machine, on CUDA what an accelerator buys (fp32 and bf16 autocast).
Rounds are timed after a warm-up; prints one line per round, the median, and the time the
config's ``max_steps`` would take at that rate.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training_speed.py
[--config config/train_sim_touch_pick.yaml] [--device cuda] [--precision bf16]``
"""

import argparse
from pathlib import Path
import statistics
import tempfile
import time

from humanoid_vla.data import EpisodeWriter
from humanoid_vla.sim.tasks import sample_task
from humanoid_vla.training import Trainer, TrainingConfig
import numpy as np
import torch

WORKSPACE = Path(__file__).resolve().parents[1]
JOINTS = 43


def write_sim_like_episodes(path: Path, episodes: int, length: int) -> None:
    """Write episodes with the recordings' keys and shapes and hand poses in the camera's view."""
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, valid_fraction=0.0) as writer:
        for episode in range(episodes):
            writer.begin_episode(sample_task(1000 + episode).instruction)
            start = np.array([0.25, -0.15, 0.05])
            goal = np.array([rng.uniform(0.3, 0.45), rng.uniform(-0.15, 0.15), 0.0])
            for step in range(length):
                fraction = step / (length - 1)
                action = np.zeros(8, np.float32)
                action[:3] = start + fraction * (goal - start)
                action[6] = 1.0  # identity quaternion (x, y, z, w)
                action[7] = float(fraction > 0.5)  # the gripper closes half way
                observations = {
                    'head_rgb': rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8),
                    'joint_states': rng.normal(size=JOINTS).astype(np.float32),
                }
                writer.add_step(observations, action, 0.1 * step)
            writer.end_episode(True)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall time measures it."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def main() -> None:
    """Build the trainer on synthetic episodes, time rounds of steps, print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--config',
                        default=str(WORKSPACE / 'config' / 'train_sim_touch_pick.yaml'))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precision', default='auto', choices=('auto', 'fp32', 'bf16'))
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--steps', type=int, default=20, help='optimisation steps per round')
    parser.add_argument('--episodes', type=int, default=40)
    parser.add_argument('--length', type=int, default=20, help='steps per episode')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / 'episodes.hdf5'
        write_sim_like_episodes(data, args.episodes, args.length)
        config = TrainingConfig.from_yaml(args.config, [
            f'data=[{data}]', f'output_dir={Path(directory) / "run"}',
            f'device={args.device}', f'precision={args.precision}', 'eval_every=0',
            'checkpoint_every=0', 'successful_only=false', 'num_workers=0',
            f'log_every={args.steps}'])
        if 3 + args.rounds * args.steps > config.max_steps:
            parser.error(f"rounds x steps must stay under the config's {config.max_steps} steps")
        trainer = Trainer(config, show_progress=False)
        summary = trainer.training_summary()
        print(f'device: {device}, precision: {summary["precision"]}, threads: '
              f'{torch.get_num_threads()}, batch: {config.batch_size}, parameters: '
              f'{sum(p.numel() for p in trainer.model.parameters()) / 1e6:.2f} M, '
              f'config: {Path(args.config).name}')
        trainer.run(3)  # warm up: allocations, kernels, instruction cache, frame cache
        synchronize(device)
        rates = []
        for index in range(args.rounds):
            start = time.perf_counter()
            losses = trainer.run(args.steps)
            synchronize(device)
            rates.append(args.steps / (time.perf_counter() - start))
            print(f'round {index + 1}: {rates[-1]:.2f} steps/s, last loss {losses[-1]:.4f}')
        trainer.close()
    median = statistics.median(rates)
    print(f'training_steps: median {median:.2f} steps/s '
          f'({median * config.batch_size:.0f} samples/s)')
    print(f"{config.max_steps} steps (the config's max_steps) at that rate: "
          f'{config.max_steps / median:.0f} s')


if __name__ == '__main__':
    main()
