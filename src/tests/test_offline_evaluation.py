"""Offline evaluation: per-dimension errors in robot units, checked against direct numpy sums."""

import json
from pathlib import Path

from humanoid_vla.actions import ActionSpec, ActionSpecMismatchError
from humanoid_vla.checkpoint import CheckpointNotFoundError, save_checkpoint
from humanoid_vla.data import EpisodeReader
from humanoid_vla.evaluation import evaluate_offline
from humanoid_vla.evaluation.offline import main as eval_main, swapped_instructions
from humanoid_vla.models import CustomVLAConfig, CustomVLAModel
from humanoid_vla.normalization import NormalizationStats
from humanoid_vla.training import Trainer, TrainingConfig
import numpy as np
import pytest
import torch

from .tiny_training import INSTRUCTIONS, TINY_MODEL, write_moves

SPEC = ActionSpec()  # right hand pose + gripper: 8-D


def write_dataset(path: Path, action_dim: int = SPEC.dim) -> Path:
    """Write 8 episodes of 10 steps: x from the frame brightness, y from the instruction."""
    return write_moves(path, length=10, seed=1, action_dim=action_dim)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp('data') / 'moves.hdf5')


def split_actions(path: Path, split: str) -> list[np.ndarray]:
    with EpisodeReader(path) as reader:
        return [reader.read_demo(name).actions.astype(np.float64) for name in reader.split(split)]


BIAS = np.array([[0.4, -0.8, 0.1, 0.2, -0.3, 0.5, 0.9, 0.7],
                 [-0.2, 0.6, 0.0, 0.0, 0.1, -0.1, 0.3, 0.25]])


@pytest.fixture(scope='module')
def constant_checkpoint(dataset, tmp_path_factory) -> tuple[Path, NormalizationStats]:
    """Save a chunk-2 checkpoint that predicts BIAS (normalised units) whatever it is shown."""
    config = CustomVLAConfig(**TINY_MODEL, action_dim=SPEC.dim, chunk_size=2)
    model = CustomVLAModel(config).eval()
    with torch.no_grad():
        model.action_head[-1].weight.zero_()
        model.action_head[-1].bias.copy_(torch.tensor(BIAS.reshape(-1), dtype=torch.float32))
    stats = NormalizationStats.from_actions(np.concatenate(split_actions(dataset, 'train')),
                                            mask=~SPEC.gripper_mask())
    directory = tmp_path_factory.mktemp('ckpt') / 'constant'
    save_checkpoint(directory, model, stats, SPEC, extra={'use_instruction': True})
    return directory, stats


def test_per_dimension_errors_match_a_direct_computation(dataset, constant_checkpoint):
    directory, stats = constant_checkpoint
    report = evaluate_offline(directory, [dataset], split='valid', batch_size=4)
    predicted = stats.unnormalize(BIAS)  # (2, 8) in robot units
    errors = []
    for actions in split_actions(dataset, 'valid'):
        for step in range(len(actions)):
            for position in range(2):
                if step + position < len(actions):  # the chunk's padding past the end
                    errors.append(actions[step + position] - predicted[position])
    errors = np.array(errors)
    np.testing.assert_allclose(report.mse, np.mean(errors ** 2, axis=0), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(report.mae, np.mean(np.abs(errors), axis=0), rtol=1e-5,
                               atol=1e-9)
    assert report.overall_mse == pytest.approx(np.mean(errors ** 2), rel=1e-5)
    assert report.num_entries == len(errors)
    assert report.num_steps == sum(len(a) for a in split_actions(dataset, 'valid'))
    assert report.dimension_names == SPEC.dimension_names()
    assert report.dimension_names[0] == 'right_hand_pose.x'
    # Constant dimensions un-normalise to their recorded value: no error at all.
    assert report.mse[2] == pytest.approx(0.0, abs=1e-12)


def test_split_choice(dataset, constant_checkpoint):
    directory, _ = constant_checkpoint
    everything = evaluate_offline(directory, dataset, split=None)
    train = evaluate_offline(directory, dataset, split='train')
    valid = evaluate_offline(directory, dataset, split='valid')
    assert everything.num_steps == train.num_steps + valid.num_steps == 80
    assert everything.num_episodes == 8 and everything.split is None


@pytest.fixture(scope='module')
def trained_runs(dataset, tmp_path_factory) -> dict[bool, Path]:
    """Train the same short run with and without the instruction; return the finals."""
    runs = {}
    for use_instruction in (True, False):
        output = tmp_path_factory.mktemp('run') / 'out'
        config = TrainingConfig(
            data=[str(dataset)], output_dir=str(output), model=dict(TINY_MODEL),
            batch_size=16, num_workers=0, max_steps=150, learning_rate=2e-3, warmup_steps=2,
            eval_every=0, checkpoint_every=0, device='cpu', augment=False,
            use_instruction=use_instruction)
        trainer = Trainer(config, show_progress=False)
        trainer.train()
        trainer.close()
        runs[use_instruction] = output / 'final'
    return runs


def test_a_trained_checkpoint_beats_the_data_variance(dataset, trained_runs):
    report = evaluate_offline(trained_runs[True], dataset, split='train')
    variance = np.concatenate(split_actions(dataset, 'train')).var(axis=0)
    assert report.use_instruction is True
    assert report.mse[0] < 0.5 * variance[0]  # x follows the frame brightness
    assert report.mse[1] < 0.1 * variance[1]  # y follows the instruction
    assert report.overall_mse < 0.5 * variance.mean()


def test_the_language_blind_baseline_cannot_follow_the_instruction(dataset, trained_runs):
    blind = evaluate_offline(trained_runs[False], dataset, split='train')
    variance = np.concatenate(split_actions(dataset, 'train')).var(axis=0)
    assert blind.use_instruction is False  # read from the checkpoint's training_args.json
    assert blind.mse[0] < 0.5 * variance[0]  # the image is still there
    assert blind.mse[1] > 0.5 * variance[1]  # left or right cannot be guessed


def test_swapped_instructions_raise_the_error_of_a_language_following_checkpoint(
        dataset, trained_runs):
    matched = evaluate_offline(trained_runs[True], dataset, split='train')
    swapped = evaluate_offline(trained_runs[True], dataset, split='train',
                               swap_instructions=True)
    assert swapped.swapped_instructions and not matched.swapped_instructions
    assert swapped.mse[1] > 10 * matched.mse[1]  # y came from the instruction
    assert "swapped for another episode's" in swapped.format_table()
    blind = evaluate_offline(trained_runs[False], dataset, split='train')
    blind_swapped = evaluate_offline(trained_runs[False], dataset, split='train',
                                     swap_instructions=True)
    assert blind_swapped.overall_mse == pytest.approx(blind.overall_mse)


def test_swapped_instructions_are_a_seeded_derangement():
    texts = [f'touch the {colour} cup' for colour in ('red', 'green', 'blue', 'yellow')]
    pairing = swapped_instructions(texts)
    assert sorted(pairing) == sorted(texts) and sorted(pairing.values()) == sorted(texts)
    assert all(pairing[text] != text for text in texts)
    assert swapped_instructions(texts) == pairing
    with pytest.raises(ValueError, match='two distinct'):
        swapped_instructions(['only one', 'only one'])


def test_instruction_withheld_for_a_blind_checkpoint(dataset, tmp_path, monkeypatch):
    model = CustomVLAModel(CustomVLAConfig(**TINY_MODEL, action_dim=SPEC.dim)).eval()
    stats = NormalizationStats.from_actions(np.concatenate(split_actions(dataset, 'train')),
                                            mask=~SPEC.gripper_mask())
    save_checkpoint(tmp_path / 'blind', model, stats, SPEC, extra={'use_instruction': False})
    seen = []
    encode = CustomVLAModel.encode_instructions

    def spy(self, texts):
        seen.extend(texts)
        return encode(self, texts)

    monkeypatch.setattr(CustomVLAModel, 'encode_instructions', spy)
    report = evaluate_offline(tmp_path / 'blind', dataset)
    assert report.use_instruction is False and set(seen) == {''}
    seen.clear()
    assert evaluate_offline(tmp_path / 'blind', dataset, use_instruction=True).use_instruction
    assert set(seen) <= set(INSTRUCTIONS) and seen


def test_cli_prints_a_table_and_writes_json(dataset, constant_checkpoint, tmp_path, capsys):
    directory, _ = constant_checkpoint
    out = tmp_path / 'report.json'
    assert eval_main([str(directory), str(dataset), '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'right_hand_pose.x' in printed and 'right_gripper.closure' in printed
    assert 'overall' in printed and 'MSE' in printed and 'valid split' in printed
    data = json.loads(out.read_text())
    assert data['split'] == 'valid' and len(data['mse']) == SPEC.dim
    assert data['overall_mae'] == pytest.approx(
        evaluate_offline(directory, dataset).overall_mae)


def test_clear_errors(dataset, constant_checkpoint, tmp_path, capsys):
    directory, _ = constant_checkpoint
    with pytest.raises(FileNotFoundError, match='nope.hdf5'):
        evaluate_offline(directory, tmp_path / 'nope.hdf5')
    with pytest.raises(CheckpointNotFoundError):
        evaluate_offline(tmp_path / 'no_checkpoint', dataset)
    other = write_dataset(tmp_path / 'seven.hdf5', action_dim=7)
    with pytest.raises(ActionSpecMismatchError):
        evaluate_offline(directory, other)
    assert eval_main([str(directory), str(tmp_path / 'nope.hdf5')]) == 2
    assert 'nope.hdf5' in capsys.readouterr().err
