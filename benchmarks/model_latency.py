"""
Latency of the custom VLA, to check it fits a 30 Hz control loop (CPU by default, or CUDA).

Measures (a) the model forward pass with a cached instruction embedding (batch 1, or
``--batch``; fp32 or bf16 autocast) and (b) the whole ``CustomVLAPolicy.predict`` (validation,
resize of a camera frame, model, un-normalisation), on a temporary checkpoint of the default
model config or on ``--checkpoint`` (e.g. checkpoints/default), with ``torch.set_num_threads``
threads (2 by default, the robot computer's budget).  Prints one ``name: median X ms, p99 Y
ms`` line per measurement; on CUDA each call waits for the GPU to finish.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/model_latency.py [--iterations 200]
[--device cuda] [--precision bf16] [--batch 64] [--checkpoint checkpoints/default]``
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


def time_calls(function: Callable[[], object], iterations: int, warmup: int,
               device: torch.device = torch.device('cpu')) -> list[float]:
    """Return the wall time of ``iterations`` calls in milliseconds, after ``warmup`` calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        function()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def report(name: str, times: list[float]) -> None:
    """Print the median and 99th percentile of ``times``."""
    p99 = float(np.percentile(times, 99))
    print(f'{name}: median {statistics.median(times):.2f} ms, p99 {p99:.2f} ms')


def load_policy(checkpoint: str | None, device: torch.device) -> CustomVLAPolicy:
    """Return ``checkpoint`` as a policy, or a temporary checkpoint of the default config."""
    if checkpoint is not None:
        return CustomVLAPolicy(checkpoint, device=device)
    torch.manual_seed(0)
    model = CustomVLAModel(CustomVLAConfig()).eval()
    spec = ActionSpec()
    rng = np.random.default_rng(0)
    stats = NormalizationStats.from_actions(rng.normal(size=(256, spec.dim)),
                                            mask=~spec.gripper_mask())
    with tempfile.TemporaryDirectory() as directory:
        save_checkpoint(Path(directory) / 'checkpoint', model, stats, spec)
        return CustomVLAPolicy(Path(directory) / 'checkpoint', device=device)


def main() -> None:
    """Load or build the model, then time the forward pass and the policy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--iterations', type=int, default=200)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--frame', type=int, nargs=2, default=(480, 640), metavar=('H', 'W'),
                        help='camera frame size fed to the policy (resized to the model input)')
    parser.add_argument('--device', default='cpu', help="torch device: 'cpu', 'cuda', ...")
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'bf16'),
                        help='bf16 autocast of the forward pass (the policy stays fp32)')
    parser.add_argument('--batch', type=int, default=1, help='batch of the forward pass')
    parser.add_argument('--checkpoint', default=None,
                        help='time this checkpoint instead of the default config, untrained')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    policy = load_policy(args.checkpoint, device)
    model, config = policy.model, policy.model.config
    tokens, mask = model.encode_instructions([INSTRUCTION] * args.batch)
    pixels = torch.rand(args.batch, 3, config.image_size, config.image_size, device=device)
    proprio = (torch.zeros(args.batch, config.proprio_dim, device=device)
               if config.use_proprio else None)
    inputs = {'instruction_embeddings': tokens, 'attention_mask': mask}
    if proprio is not None:
        inputs['proprio'] = proprio

    def forward() -> None:
        with torch.inference_mode(), torch.autocast(
                device.type, dtype=torch.bfloat16, enabled=args.precision == 'bf16'):
            model(pixels, **inputs)

    print(f'device: {device}, precision: {args.precision}, batch: {args.batch}, threads: '
          f'{torch.get_num_threads()}, parameters: '
          f'{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M, '
          f'model: {args.checkpoint or "default config"}, frame: {args.frame[0]}x{args.frame[1]}')
    report('model_forward_cached_instruction',
           time_calls(forward, args.iterations, args.warmup, device))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(*args.frame, 3), dtype=np.uint8)
    joints = None if proprio is None else np.zeros(config.proprio_dim, np.float32)
    observation = Observation(image=image, instruction=INSTRUCTION, proprio=joints)
    report('policy_predict_with_preprocessing',
           time_calls(lambda: policy.predict(observation), args.iterations, args.warmup, device))


if __name__ == '__main__':
    main()
