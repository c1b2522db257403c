"""
CPU latency of the default custom VLA, to check it fits a 30 Hz control loop.

Measures (a) the model forward pass with a cached instruction embedding and (b) the whole
``CustomVLAPolicy.predict`` (validation, resize of a camera frame, model, un-normalisation) on a
temporary checkpoint, batch 1, with ``torch.set_num_threads`` threads (2 by default, the robot
computer's budget).  Prints one ``name: median X ms, p99 Y ms`` line per measurement.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/model_latency.py [--iterations 200]``
"""

import argparse
from pathlib import Path
import statistics
import tempfile
import time
from typing import Callable

from humanoid_vla.actions import ActionSpec
from humanoid_vla.checkpoint import save_checkpoint
from humanoid_vla.models import CustomVLAConfig, CustomVLAModel
from humanoid_vla.normalization import NormalizationStats
from humanoid_vla.policies import Observation
from humanoid_vla.policies.custom import CustomVLAPolicy
import numpy as np
import torch

INSTRUCTION = 'pick up the red cube and put it in the bin'


def time_calls(function: Callable[[], object], iterations: int, warmup: int) -> list[float]:
    """Return the wall time of ``iterations`` calls in milliseconds, after ``warmup`` calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def report(name: str, times: list[float]) -> None:
    """Print the median and 99th percentile of ``times``."""
    p99 = float(np.percentile(times, 99))
    print(f'{name}: median {statistics.median(times):.2f} ms, p99 {p99:.2f} ms')


def main() -> None:
    """Build the default model, then time the forward pass and the policy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--iterations', type=int, default=200)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--frame', type=int, nargs=2, default=(480, 640), metavar=('H', 'W'),
                        help='camera frame size fed to the policy (resized to 224x224)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = CustomVLAConfig()
    model = CustomVLAModel(config).eval()
    tokens, mask = model.encode_instructions([INSTRUCTION])
    pixels = torch.rand(1, 3, config.image_size, config.image_size)

    def forward() -> None:
        with torch.inference_mode():
            model(pixels, instruction_embeddings=tokens, attention_mask=mask)

    print(f'threads: {torch.get_num_threads()}, parameters: '
          f'{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M, '
          f'frame: {args.frame[0]}x{args.frame[1]}')
    report('model_forward_cached_instruction', time_calls(forward, args.iterations, args.warmup))

    spec = ActionSpec()
    rng = np.random.default_rng(0)
    stats = NormalizationStats.from_actions(rng.normal(size=(256, spec.dim)),
                                            mask=~spec.gripper_mask())
    with tempfile.TemporaryDirectory() as directory:
        save_checkpoint(Path(directory) / 'checkpoint', model, stats, spec)
        policy = CustomVLAPolicy(Path(directory) / 'checkpoint')
    image = rng.integers(0, 256, size=(*args.frame, 3), dtype=np.uint8)
    observation = Observation(image=image, instruction=INSTRUCTION)
    report('policy_predict_with_preprocessing',
           time_calls(lambda: policy.predict(observation), args.iterations, args.warmup))


if __name__ == '__main__':
    main()
