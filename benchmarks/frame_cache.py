"""
What the frame cache (``cache_frames``) saves per training batch of recorded frames.

Reading a batch of recorded frames (HDF5, lzf-compressed 224 x 224) and resizing them to the
model's input, against serving them from the cache once every frame has been read.

Both datasets read the same frames in the same random order; the cached one is warmed first
(one pass), as it is from the second epoch of a training run on.  Rounds alternate between the
two so that load from elsewhere on the machine hits both alike.  Prints one line per round,
then the medians per batch and their ratio.  ``--data`` measures recorded episode files (the
simulation's recordings); without it, episodes of rendered-looking frames (flat colours and
noise, so lzf compresses them as it does the simulator's) are generated first.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python benchmarks/frame_cache.py [--data FILE.hdf5 ...]``
"""

import argparse
from pathlib import Path
import statistics
import tempfile
import time

from humanoid_vla.data import EpisodeWriter
from humanoid_vla.data.dataset import EpisodeDataset
import numpy as np
import torch


def write_episodes(path: Path, episodes: int, length: int) -> None:
    """Write 224 x 224 frames of a few flat-coloured boxes over a noisy background."""
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, valid_fraction=0.0) as writer:
        for episode in range(episodes):
            writer.begin_episode(f'touch object {episode}')
            for step in range(length):
                frame = np.full((224, 224, 3), 200, np.uint8)
                frame += rng.integers(0, 8, size=frame.shape, dtype=np.uint8)
                for _ in range(4):
                    top, left = rng.integers(0, 190, size=2)
                    frame[top:top + 30, left:left + 30] = rng.integers(0, 256, size=3)
                writer.add_step({'head_rgb': frame}, np.zeros(8, np.float32), 0.1 * step)
            writer.end_episode(True)


def batch_seconds(data: EpisodeDataset, indices: np.ndarray) -> float:
    """Return the seconds one batch of ``indices`` takes to load, as the trainer collates it."""
    start = time.perf_counter()
    torch.stack([data[int(index)]['image'] for index in indices])
    return time.perf_counter() - start


def main() -> None:
    """Parse arguments, time both datasets round by round, print the medians and ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--data', nargs='*', help='recorded episode files (default: generated)')
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--batches', type=int, default=10, help='batches per round')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--image-size', type=int, default=112)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.data
        if not paths:
            paths = [Path(tmp) / 'frames.hdf5']
            write_episodes(paths[0], episodes=20, length=20)
        common = {'split': None, 'image_size': args.image_size}
        plain = EpisodeDataset(paths, **common)
        cached = EpisodeDataset(paths, cache_frames=True, **common)
        rng = np.random.default_rng(0)
        rounds = [rng.choice(len(plain), size=(args.batches, args.batch_size))
                  for _ in range(args.rounds)]
        for index in np.unique(np.concatenate([r.ravel() for r in rounds])):
            cached[int(index)]  # warm: every frame a round asks for was read once
        times = {'read and resize': [], 'cached': []}
        for number, batches in enumerate(rounds):
            for name, data in (('read and resize', plain), ('cached', cached)):
                times[name].append(statistics.median(batch_seconds(data, b) for b in batches))
            print(f'round {number}: ' + ', '.join(
                f'{name} {values[-1] * 1e3:.1f} ms' for name, values in times.items()))
        plain.close()
        cached.close()
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f'frames from {", ".join(map(str, args.data or ["generated episodes"]))}, '
          f'batch {args.batch_size} at {args.image_size} px, {args.threads} threads')
    print('median per batch: ' + ', '.join(
        f'{name} {value * 1e3:.1f} ms' for name, value in medians.items()))
    print(f'ratio read-and-resize / cached: '
          f'{medians["read and resize"] / medians["cached"]:.0f}x')


if __name__ == '__main__':
    main()
