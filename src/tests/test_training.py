"""Training: config checks, learning, seeding, checkpoints and resume, the CLI and torchrun DDP."""

import json
import os
from pathlib import Path
import subprocess
import sys

from humanoid_vla.actions import ActionSpecMismatchError
from humanoid_vla.camera_projection import ImageCrop, PinholeCamera
from humanoid_vla.checkpoint import load_checkpoint
from humanoid_vla.data import EpisodeDataset, EpisodeReader, EpisodeReadError
from humanoid_vla.evaluation import evaluate_offline
from humanoid_vla.models import CustomVLAConfig
from humanoid_vla.policies import Observation
from humanoid_vla.policies.custom import CustomVLAPolicy
from humanoid_vla.training import (
    find_last_checkpoint,
    precision,
    Trainer,
    TrainingConfig,
    TrainingConfigError,
    warmup_cosine,
)
from humanoid_vla.training.cli import main as train_main
import humanoid_vla.training.trainer as trainer_module
import numpy as np
import pytest
import torch
import yaml

from .tiny_training import INSTRUCTIONS, TINY_MODEL, write_moves

WORKSPACE = Path(__file__).resolve().parents[2]
TRAINING_MODEL = {**TINY_MODEL, 'dropout': 0.1}  # dropout: resume must restore its RNG too


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Use one intra-op thread: faster on a shared 2-core machine, and the same in every run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    return write_moves(tmp_path_factory.mktemp('data') / 'moves.hdf5')


def make_config(data: Path, output_dir: Path, **overrides) -> TrainingConfig:
    fields = {
        'data': [str(data)], 'output_dir': str(output_dir), 'model': dict(TRAINING_MODEL),
        'batch_size': 8, 'num_workers': 0, 'max_steps': 8, 'learning_rate': 3e-3,
        'warmup_steps': 2, 'eval_every': 0, 'checkpoint_every': 0, 'log_every': 2,
        'device': 'cpu', 'augment': False,
    }
    fields.update(overrides)
    return TrainingConfig(**fields)


def record_instructions(model) -> list[str]:
    """Make ``model`` list every instruction it encodes from now on (still encoding them)."""
    seen: list[str] = []
    encode = model.encode_instructions

    def recording(texts):
        seen.extend(texts)
        return encode(texts)

    model.encode_instructions = recording
    return seen


def run_training(config: TrainingConfig, resume: bool = False) -> Trainer:
    trainer = Trainer(config, resume=resume, show_progress=False)
    trainer.train()
    trainer.close()
    return trainer


@pytest.fixture(scope='module')
def trained(dataset, tmp_path_factory) -> Trainer:
    """Train briefly on the learnable dataset, with validation and periodic checkpoints."""
    output = tmp_path_factory.mktemp('run') / 'out'
    config = make_config(dataset, output, max_steps=80, batch_size=16, eval_every=40,
                         checkpoint_every=20, keep_last_checkpoints=2, log_every=10,
                         model={**TRAINING_MODEL, 'dropout': 0.0})
    return run_training(config)


# --- learning and outputs ---------------------------------------------------------------------

def test_a_short_run_lowers_the_loss(trained):
    losses = trained.losses
    assert len(losses) == 80 and trained.step == 80
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.75 * first, (first, last)
    assert [step for step, _ in trained.valid_losses] == [40, 80]
    assert all(np.isfinite(loss) for _, loss in trained.valid_losses)


def test_bf16_autocast_on_cpu_learns_and_keeps_fp32_weights(dataset, tmp_path):
    config = make_config(dataset, tmp_path / 'bf16', max_steps=80, batch_size=16,
                         precision='bf16', model={**TRAINING_MODEL, 'dropout': 0.0})
    trainer = Trainer(config, show_progress=False)
    queued = list(trainer._messages)
    trainer.train()
    trainer.close()
    first, last = np.mean(trainer.losses[:10]), np.mean(trainer.losses[-10:])
    assert last < 0.75 * first, (first, last)
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    saved = load_checkpoint(tmp_path / 'bf16' / 'final')
    assert {p.dtype for p in saved.model.parameters()} == {torch.float32}
    # An explicit bf16 is kept (and warned about where the CPU only emulates it).
    assert trainer.training_summary()['precision'] == 'bf16'
    emulated = not precision.native_bf16(torch.device('cpu'))
    assert any('emulated' in message for message in queued) == emulated


def test_output_directory_layout(trained):
    output = trained.output_dir
    # keep_last_checkpoints=2: checkpoint-20 and -40 were pruned.
    assert sorted(p.name for p in output.glob('checkpoint-*')) == ['checkpoint-60',
                                                                   'checkpoint-80']
    assert (output / 'last_checkpoint').read_text().strip() == 'checkpoint-80'
    assert find_last_checkpoint(output) == output / 'checkpoint-80'
    assert (output / 'checkpoint-80' / 'training_state.pt').is_file()
    recorded = yaml.safe_load((output / 'train_config.yaml').read_text())
    assert recorded['max_steps'] == 80
    extra = json.loads((output / 'final' / 'training_args.json').read_text())
    assert extra['step'] == 80 and extra['use_instruction'] is True
    assert extra['valid_loss'] == pytest.approx(trained.valid_losses[-1][1])
    assert extra['config']['batch_size'] == 16


def test_each_instruction_is_encoded_once(trained):
    cache = trained.model.instruction_cache
    assert cache.misses == len(INSTRUCTIONS)
    assert all(text in cache for text in INSTRUCTIONS)
    assert cache.hits > 80


def test_normalisation_stats_come_from_the_train_split_with_raw_grippers(trained):
    stats = trained.stats
    assert stats.mask.tolist() == [True] * 7 + [False]
    np.testing.assert_allclose(stats.max, trained.train_data.all_actions().max(axis=0))


def test_final_checkpoint_runs_as_a_policy_in_robot_units(trained):
    policy = CustomVLAPolicy(trained.output_dir / 'final')
    frame = np.full((48, 64, 3), 200, np.uint8)
    actions = policy.predict(Observation(image=frame, instruction=INSTRUCTIONS[0]))
    assert actions.shape == (1, 8)
    x, y, z = actions[0, :3]
    assert 0.0 <= x <= 1.0 and -0.5 <= y <= 0.5
    assert z == pytest.approx(0.3, abs=1e-6)  # constant dimensions come back in metres
    np.testing.assert_allclose(actions[0, 3:7], [0.0, 0.0, 0.0, 1.0], atol=1e-6)
    assert policy.action_spec == trained.spec


# --- determinism and resume -------------------------------------------------------------------

def test_same_seed_same_losses_other_seed_other_losses(dataset, tmp_path):
    def losses(name, seed):
        config = make_config(dataset, tmp_path / name, max_steps=5, seed=seed, augment=True)
        return run_training(config).losses

    first, second, other = losses('a', 0), losses('b', 0), losses('c', 1)
    assert first == second
    assert first != other


def test_resume_repeats_the_uninterrupted_run(dataset, tmp_path):
    settings = {'max_steps': 8, 'checkpoint_every': 4, 'augment': True, 'eval_every': 4}
    full = run_training(make_config(dataset, tmp_path / 'full', **settings))

    interrupted = Trainer(make_config(dataset, tmp_path / 'cut', **settings), show_progress=False)
    interrupted.run(5)  # saves checkpoint-4, then one more step that is lost
    interrupted.close()
    assert find_last_checkpoint(tmp_path / 'cut').name == 'checkpoint-4'

    resumed = Trainer(make_config(dataset, tmp_path / 'cut', **settings), resume=True,
                      show_progress=False)
    assert resumed.step == 4
    assert resumed.scheduler.last_epoch == 4
    assert resumed.optimizer.state_dict()['state'][0]['step'].item() == 4
    resumed.train()
    resumed.close()
    assert resumed.step == 8
    np.testing.assert_allclose(resumed.losses, full.losses, rtol=1e-6)
    assert resumed.optimizer.param_groups[0]['lr'] == pytest.approx(
        full.optimizer.param_groups[0]['lr'])
    for name, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, msg=name)


def test_existing_run_needs_resume(dataset, tmp_path):
    config = make_config(dataset, tmp_path / 'out', max_steps=2)
    run_training(config)
    with pytest.raises(FileExistsError, match='--resume'):
        Trainer(config, show_progress=False)


def test_resume_with_nothing_to_resume_starts_at_step_zero(dataset, tmp_path):
    trainer = Trainer(make_config(dataset, tmp_path / 'new', max_steps=2), resume=True,
                      show_progress=False)
    assert trainer.step == 0
    trainer.close()


def test_warmup_then_cosine_schedule():
    factors = [warmup_cosine(step, warmup_steps=4, max_steps=12) for step in range(13)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[8] == pytest.approx(0.5) and factors[12] == 0.0
    assert all(a >= b for a, b in zip(factors[3:], factors[4:]))
    assert warmup_cosine(0, warmup_steps=0, max_steps=10) == 1.0


# --- the instruction-blind baseline -----------------------------------------------------------

def test_use_instruction_false_withholds_the_instruction(dataset, tmp_path):
    trainer = Trainer(make_config(dataset, tmp_path / 'blind', use_instruction=False,
                                  max_steps=3, eval_every=3), show_progress=False)
    seen = record_instructions(trainer.model)
    trainer.train()
    trainer.close()
    assert seen and set(seen) == {''}
    assert not any(text in trainer.model.instruction_cache for text in INSTRUCTIONS)
    extra = json.loads((tmp_path / 'blind' / 'final' / 'training_args.json').read_text())
    assert extra['use_instruction'] is False
    policy = CustomVLAPolicy(tmp_path / 'blind' / 'final')
    served = record_instructions(policy.model)
    policy.predict(Observation(np.zeros((32, 32, 3), np.uint8), INSTRUCTIONS[0]))
    assert served == ['']


# --- configuration errors ---------------------------------------------------------------------

def test_action_offset_reaches_training_validation_checkpoint_and_offline_eval(dataset, tmp_path):
    trainer = run_training(make_config(dataset, tmp_path / 'out', action_offset=1, chunk_size=2,
                                       max_steps=2, model={**TRAINING_MODEL}))
    for split, data in (('train', trainer.train_data), ('valid', trainer.valid_data)):
        plain = EpisodeDataset(dataset, split=split, chunk_size=2, image_size=32)
        torch.testing.assert_close(data[0]['actions'][0], plain[1]['actions'][0])
        plain.close()
    final = tmp_path / 'out' / 'final'
    assert json.loads((final / 'training_args.json').read_text())['action_offset'] == 1
    # 12-step episodes, chunk 2: offset 0 counts 23 actions per episode, offset 1 counts 21.
    report = evaluate_offline(final, [dataset], split='valid')
    assert report.num_entries == 21 * report.num_episodes


def test_successful_only_leaves_failed_demonstrations_out_of_training_and_validation(tmp_path):
    # Episodes 0-7 (the writer's mask puts 1 and 3 in validation); 0 and 3 failed.
    data = write_moves(tmp_path / 'mixed.hdf5', failed=(0, 3))
    with EpisodeReader(data) as reader:
        failed = [n for n in reader.demo_names() if not reader.success(n)]
        train_failed = len(set(failed) & set(reader.split('train')))
        assert train_failed == 1 and len(reader.split('valid')) == 2
    assert len(failed) == 2
    everything = run_training(make_config(data, tmp_path / 'all', max_steps=1))
    trainer = run_training(make_config(data, tmp_path / 'ok', max_steps=1, successful_only=True))
    assert trainer.train_data.num_episodes == everything.train_data.num_episodes - train_failed
    kept = trainer.train_data.num_episodes + trainer.valid_data.num_episodes
    assert kept == everything.train_data.num_episodes + everything.valid_data.num_episodes - 2
    extra = json.loads((tmp_path / 'ok' / 'final' / 'training_args.json').read_text())
    assert extra['successful_only'] is True and extra['unsuccessful_episodes_skipped'] == 2


def test_successful_only_with_no_successful_episode_says_so(tmp_path):
    data = write_moves(tmp_path / 'failed.hdf5', episodes=2, failed=(0, 1))
    with pytest.raises(EpisodeReadError, match='no successful episodes'):
        run_training(make_config(data, tmp_path / 'out', max_steps=1, successful_only=True))


def test_subgoal_part_trains_the_subgoal_head_and_is_checked(dataset, tmp_path):
    model = {**TRAINING_MODEL, 'vision_backbone': 'conv', 'pooling': 'readout',
             'subgoal_loss_weight': 1.0}
    trainer = run_training(make_config(dataset, tmp_path / 'out', max_steps=2, model=model,
                                       subgoal_part='right_gripper'))
    item = trainer.train_data[0]
    # The fixture's gripper follows the frame brightness, so segments are short: the subgoal is
    # an action of the same episode at or after the frame's own.
    assert item['subgoal'].shape == (8,) and item['subgoal'][1] == item['actions'][0, 1]
    inputs = trainer.model_inputs(next(iter(trainer._loader)))
    assert inputs['subgoal_actions'].shape == (8, 8)
    extra = json.loads((tmp_path / 'out' / 'final' / 'training_args.json').read_text())
    assert extra['config']['subgoal_part'] == 'right_gripper'
    with pytest.raises(TrainingConfigError, match='go together'):
        make_config(dataset, tmp_path / 'a', model=model)
    with pytest.raises(TrainingConfigError, match='go together'):
        make_config(dataset, tmp_path / 'b', subgoal_part='right_gripper')
    with pytest.raises(TrainingConfigError, match='not one of the action_parts'):
        make_config(dataset, tmp_path / 'c', model=model, subgoal_part='left_gripper')


# Looking straight down from 1.3 m with 90 degrees of view: the fixture's hand positions
# (x in [0, 1], y = +-0.5, z = 0.3) are 1 m away and all inside the image.
DOWN_CAMERA = {'position': [0.0, 0.0, 1.3], 'quaternion_xyzw': [0.0, 0.0, -0.7071068, 0.7071068],
               'fovy_deg': 90.0}


def test_grounding_targets_are_image_positions_of_their_segment_map():
    camera = PinholeCamera.from_mapping(DOWN_CAMERA)
    positions = np.array([[0.0, 0.0, 0.3], [0.5, -0.5, 0.3], [0.0, 0.0, 0.3], [3.0, 0.0, 0.3],
                          [0.0, 0.0, 2.0]])
    targets, maps = trainer_module.grounding_targets(camera, positions,
                                                     np.array([0, 1, 2, 0, 0]), maps=2)
    assert targets[0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert targets[1].tolist() == pytest.approx([0.5, -0.5], abs=1e-6)
    # Segment 2 has no map; a point outside the image or behind the camera trains none.
    assert maps.tolist() == [0, 1, -1, -1, -1]
    assert np.isfinite(targets).all()


def test_segment_grounding_targets_train_each_segment_still_ahead_on_its_own_map():
    camera = PinholeCamera.from_mapping(DOWN_CAMERA)
    positions = np.array([[[0.0, 0.0, 0.3], [0.5, -0.5, 0.3], [0.5, 0.5, 0.3]],
                          [[0.0, 0.0, 0.3], [3.0, 0.0, 0.3], [0.5, 0.5, 0.3]]])
    mask = np.array([[True, True, True], [False, True, False]])
    targets, maps = trainer_module.segment_grounding_targets(camera, positions, mask, maps=2)
    assert targets.shape == (2, 3, 2)
    assert targets[0, 1].tolist() == pytest.approx([0.5, -0.5], abs=1e-6)
    # Segment 2 has no map, segment 0 of item 1 is behind it, its segment 1 is off the image.
    assert maps.tolist() == [[0, 1, -1], [-1, -1, -1]]


def test_grounding_upcoming_trains_every_map_still_ahead(dataset, tmp_path):
    model = {**TRAINING_MODEL, 'vision_backbone': 'conv', 'pooling': 'readout',
             'language_film': True, 'subgoal_loss_weight': 1.0, 'grounding_maps': 2}
    config = make_config(dataset, tmp_path / 'out', max_steps=2, eval_every=2, model=model,
                         subgoal_part='right_gripper', grounding_camera=DOWN_CAMERA,
                         grounding_upcoming=True)
    trainer = run_training(config)
    inputs = trainer.model_inputs(next(iter(trainer._loader)))
    assert inputs['grounding_targets'].shape == (8, 2, 2)
    maps = inputs['grounding_target_maps']
    assert set(maps[:, 0].tolist()) <= {-1, 0} and set(maps[:, 1].tolist()) <= {-1, 1}
    # An episode's first frame heads for segment 0 and also learns where segment 1 ends.
    assert trainer.train_data[0]['segment_subgoal_mask'].tolist() == [True, True]
    assert 0.0 < trainer.valid_grounding_error < 2.0 * np.sqrt(2.0)
    with pytest.raises(TrainingConfigError, match='grounding_upcoming needs'):
        make_config(dataset, tmp_path / 'a', grounding_upcoming=True)


def test_map_anchors_use_the_grounding_camera_and_the_run_s_action_units(dataset, tmp_path):
    model = {**TRAINING_MODEL, 'vision_backbone': 'conv', 'pooling': 'readout',
             'language_film': True, 'subgoal_loss_weight': 1.0, 'grounding_maps': 2,
             'map_anchors': True}
    config = make_config(dataset, tmp_path / 'out', max_steps=2, model=model,
                         subgoal_part='right_gripper', grounding_camera=DOWN_CAMERA)
    trainer = run_training(config)
    anchors = trainer.model.map_anchors
    assert trainer.model.config.map_anchor_camera == DOWN_CAMERA
    scale, shift = trainer.stats.affine(slice(0, 2))
    assert anchors.scale.tolist() == pytest.approx(scale.tolist())
    assert anchors.shift.tolist() == pytest.approx(shift.tolist())
    reloaded = load_checkpoint(tmp_path / 'out' / 'final').model
    assert reloaded.map_anchors.scale.tolist() == pytest.approx(scale.tolist())
    with pytest.raises(TrainingConfigError, match='first of the action_parts must be a pose'):
        make_config(dataset, tmp_path / 'a', model=model, subgoal_part='right_gripper',
                    grounding_camera=DOWN_CAMERA,
                    action_parts=['right_gripper', 'right_hand_pose'])


def test_peer_grounding_targets_train_one_map_per_group_with_every_peer():
    camera = PinholeCamera.from_mapping(DOWN_CAMERA)
    positions = np.zeros((1, 2, 2, 3))
    positions[0, 0] = [[0.5, -0.5, 0.3], [0.0, 0.0, 0.3]]
    positions[0, 1] = [[3.0, 0.0, 0.3], [0.5, 0.5, 0.3]]
    mask = np.array([[[True, True], [True, False]]])
    targets, maps = trainer_module.peer_grounding_targets(camera, positions, mask, first_map=2)
    assert targets.shape == (1, 4, 2)
    assert targets[0, 0].tolist() == pytest.approx([0.5, -0.5], abs=1e-6)
    # Group 0 trains map 2 twice; group 1's first peer is off the image, its second masked.
    assert maps.tolist() == [[2, 2, -1, -1]]


def test_grounding_peer_groups_train_the_last_maps_and_stay_out_of_the_error(tmp_path):
    import h5py
    path = write_moves(tmp_path / 'peers.hdf5')
    peers = {'colour': [[0.5, -0.5, 0.3], [0.0, 0.0, 0.3]], 'shape': [[0.5, 0.5, 0.3]]}
    with h5py.File(path, 'r+') as handle:
        for name in handle['data']:
            handle['data'][name].attrs['grounding_peers'] = json.dumps(peers)
    model = {**TRAINING_MODEL, 'vision_backbone': 'conv', 'pooling': 'readout',
             'language_film': True, 'subgoal_loss_weight': 1.0, 'grounding_maps': 4}
    config = make_config(path, tmp_path / 'out', max_steps=2, eval_every=2, model=model,
                         subgoal_part='right_gripper', grounding_camera=DOWN_CAMERA,
                         grounding_peer_groups=['colour', 'shape'])
    trainer = run_training(config)
    batch = next(iter(trainer._loader))
    inputs = trainer.model_inputs(batch)
    assert inputs['grounding_targets'].shape == (8, 1 + 2 * 5, 2)
    maps = inputs['grounding_target_maps']
    assert set(maps[:, 0].tolist()) <= {-1, 0, 1}
    first_segment = batch['subgoal_segment'] == 0
    assert first_segment.any()
    # Five slots per group: the two colour peers train map 2, the shape peer map 3.
    peer_row = torch.tensor([2, 2, -1, -1, -1, 3, -1, -1, -1, -1])
    assert (maps[first_segment, 1:] == peer_row).all()
    assert (maps[~first_segment, 1:] == -1).all()
    assert 0.0 < trainer.valid_grounding_error < 2.0 * np.sqrt(2.0)
    with pytest.raises(TrainingConfigError, match='grounding_peer_groups take the last 2'):
        make_config(path, tmp_path / 'a', model={**model, 'grounding_maps': 2},
                    subgoal_part='right_gripper', grounding_camera=DOWN_CAMERA,
                    grounding_peer_groups=['colour', 'shape'])
    with pytest.raises(TrainingConfigError, match='distinct'):
        make_config(path, tmp_path / 'b', model=model, subgoal_part='right_gripper',
                    grounding_camera=DOWN_CAMERA, grounding_peer_groups=['colour', 'colour'])
    # The map that sees only pixel colours (the first AND map, map 2) must learn the colours.
    pixel_model = {**model, 'grounding_and_maps': 2, 'grounding_pixel_maps': 1}
    pixel_run = run_training(make_config(
        path, tmp_path / 'c', max_steps=1, eval_every=1, model=pixel_model,
        subgoal_part='right_gripper', grounding_camera=DOWN_CAMERA,
        grounding_peer_groups=['colour', 'shape']))
    assert pixel_run.model.grounding.colour_match.queries.grad is not None
    for groups in (['shape', 'colour'], []):
        with pytest.raises(TrainingConfigError, match='grounding map 2 sees only pixel colours'):
            make_config(path, tmp_path / 'd', model=pixel_model, subgoal_part='right_gripper',
                        grounding_camera=DOWN_CAMERA, grounding_peer_groups=groups)
    # The map with a shape path of its own (after the colour ones) must learn the shapes.
    both = {**pixel_model, 'grounding_shape_maps': 1}
    make_config(path, tmp_path / 'e', model=both, subgoal_part='right_gripper',
                grounding_camera=DOWN_CAMERA, grounding_peer_groups=['colour', 'shape'])
    shape_first = {**model, 'grounding_and_maps': 2, 'grounding_shape_maps': 1}
    with pytest.raises(TrainingConfigError, match='grounding map 2 sees recoloured images'):
        make_config(path, tmp_path / 'f', model=shape_first, subgoal_part='right_gripper',
                    grounding_camera=DOWN_CAMERA, grounding_peer_groups=['colour', 'shape'])


def test_grounding_camera_trains_the_grounding_maps_and_is_checked(dataset, tmp_path):
    model = {**TRAINING_MODEL, 'vision_backbone': 'conv', 'pooling': 'readout',
             'language_film': True, 'subgoal_loss_weight': 1.0, 'grounding_maps': 2}
    config = make_config(dataset, tmp_path / 'out', max_steps=2, eval_every=2, model=model,
                         subgoal_part='right_gripper', grounding_camera=DOWN_CAMERA)
    trainer = run_training(config)
    inputs = trainer.model_inputs(next(iter(trainer._loader)))
    assert inputs['grounding_targets'].shape == (8, 2)
    assert set(inputs['grounding_target_maps'].tolist()) <= {-1, 0, 1}
    assert 0.0 < trainer.valid_grounding_error < 2.0 * np.sqrt(2.0)
    assert 'grounding error' in trainer._grounding_note()
    saved = yaml.safe_load((tmp_path / 'out' / trainer_module.CONFIG_RECORD_FILENAME).read_text())
    assert saved['grounding_camera'] == DOWN_CAMERA
    no_maps = {**model, 'grounding_maps': 0}
    with pytest.raises(TrainingConfigError, match='go together'):
        make_config(dataset, tmp_path / 'a', model=no_maps, subgoal_part='right_gripper',
                    grounding_camera=DOWN_CAMERA)
    with pytest.raises(TrainingConfigError, match='go together'):
        make_config(dataset, tmp_path / 'b', model=model, subgoal_part='right_gripper')
    with pytest.raises(TrainingConfigError, match='need subgoal_part'):
        make_config(dataset, tmp_path / 'c', model={**model, 'subgoal_loss_weight': 0.0},
                    grounding_camera=DOWN_CAMERA)
    with pytest.raises(TrainingConfigError, match='grounding_camera: .*fovy_deg'):
        make_config(dataset, tmp_path / 'd', model=model, subgoal_part='right_gripper',
                    grounding_camera={**DOWN_CAMERA, 'fovy_deg': 200})


def test_an_image_crop_moves_the_grounding_targets_into_its_window(dataset, tmp_path):
    window = [0.25, 0.0, 1.0, 0.75]
    model = {**TRAINING_MODEL, 'vision_backbone': 'conv', 'pooling': 'readout',
             'language_film': True, 'subgoal_loss_weight': 1.0, 'grounding_maps': 2}
    runs = {}
    for name, crop in (('frame', None), ('window', window)):
        config = make_config(dataset, tmp_path / name, max_steps=1, model={
            **model, 'image_crop': crop}, subgoal_part='right_gripper',
            grounding_camera=DOWN_CAMERA)
        assert config.camera.crop == (None if crop is None else ImageCrop(*window))
        trainer = run_training(config)
        runs[name] = trainer.model_inputs(next(iter(trainer._loader)))
    frame, cropped = runs['frame'], runs['window']
    torch.testing.assert_close(frame['actions'], cropped['actions'])  # the same batch
    expected = ImageCrop(*window).to_window(frame['grounding_targets'].numpy())
    trained = cropped['grounding_target_maps'] >= 0
    assert trained.any()
    np.testing.assert_allclose(cropped['grounding_targets'].numpy()[trained.numpy()],
                               expected[trained.numpy()], atol=1e-5)
    assert load_checkpoint(tmp_path / 'window' / 'final').model.config.image_crop == window
    anchored = make_config(dataset, tmp_path / 'a', model={**model, 'image_crop': window,
                                                           'map_anchors': True},
                           subgoal_part='right_gripper', grounding_camera=DOWN_CAMERA)
    assert anchored.build_model_config().map_anchor_camera == {**DOWN_CAMERA, 'crop': window}
    with pytest.raises(TrainingConfigError, match='model.image_crop'):
        make_config(dataset, tmp_path / 'b', model=model, subgoal_part='right_gripper',
                    grounding_camera={**DOWN_CAMERA, 'crop': window})


def test_missing_data_file_is_named(tmp_path):
    missing = tmp_path / 'nope.hdf5'
    with pytest.raises(FileNotFoundError, match='nope.hdf5'):
        TrainingConfig(data=[str(missing)], output_dir=str(tmp_path / 'out'))


def test_unknown_keys_are_named(dataset, tmp_path):
    with pytest.raises(TrainingConfigError, match=r"\['learnig_rate'\].*learning_rate"):
        TrainingConfig.from_dict({'data': [str(dataset)], 'output_dir': str(tmp_path),
                                  'learnig_rate': 1e-3})
    with pytest.raises(TrainingConfigError, match='hiden_size'):
        make_config(dataset, tmp_path, model={'hiden_size': 64})
    with pytest.raises(TrainingConfigError, match='needs data'):
        TrainingConfig.from_dict({'output_dir': str(tmp_path)})


@pytest.mark.parametrize('field, value, message', [
    ('batch_size', 0, 'batch_size must be >= 1'),
    ('max_steps', 2.5, 'max_steps must be an integer'),
    ('learning_rate', 0, 'learning_rate must be > 0'),
    ('grad_clip', -1.0, 'grad_clip must be >= 0'),
    ('precision', 'fp16', 'precision must be one of'),
    ('device', 'tpu', 'device must be one of'),
    ('use_instruction', 'no', 'use_instruction must be true or false'),
    ('action_parts', ['right_hand', 'right_gripper'], 'unknown action part'),
    ('image_size', 48, 'contradicts the model'),
])
def test_bad_values_are_refused(dataset, tmp_path, field, value, message):
    with pytest.raises(TrainingConfigError, match=message):
        make_config(dataset, tmp_path, **{field: value})


def test_model_fields_must_agree_with_the_training_config(dataset, tmp_path):
    with pytest.raises(TrainingConfigError, match='action_dim=7 contradicts'):
        make_config(dataset, tmp_path, model={**TRAINING_MODEL, 'action_dim': 7})
    with pytest.raises(TrainingConfigError, match='patch_size'):
        make_config(dataset, tmp_path, model={**TRAINING_MODEL, 'patch_size': 15})
    assert make_config(dataset, tmp_path, chunk_size=3).build_model_config().chunk_size == 3


def test_action_parts_must_match_the_data(dataset, tmp_path):
    config = make_config(dataset, tmp_path, action_parts=['right_hand_pose'])
    with pytest.raises(ActionSpecMismatchError, match='expected dimension 7'):
        Trainer(config, show_progress=False)


def test_yaml_overrides_and_relative_model_path(dataset, tmp_path):
    (tmp_path / 'model.yaml').write_text(yaml.safe_dump(TRAINING_MODEL))
    (tmp_path / 'train.yaml').write_text(yaml.safe_dump(
        {'data': [str(dataset)], 'output_dir': str(tmp_path / 'out'), 'model': 'model.yaml'}))
    config = TrainingConfig.from_yaml(tmp_path / 'train.yaml', [
        'max_steps=7', 'use_instruction=false', 'model.hidden_size=64',
        f'data=[{dataset}, {dataset}]'])
    assert config.max_steps == 7 and config.use_instruction is False
    assert config.data == [str(dataset)] * 2
    assert config.model['hidden_size'] == 64 and config.model['vision_layers'] == 1
    with pytest.raises(TrainingConfigError, match='key=value'):
        TrainingConfig.from_yaml(tmp_path / 'train.yaml', ['max_steps'])


def test_shipped_configs_parse(dataset, tmp_path):
    config = TrainingConfig.from_yaml(WORKSPACE / 'config' / 'train_custom_vla.yaml',
                                      [f'data=[{dataset}]', f'output_dir={tmp_path}'])
    model = config.build_model_config()
    defaults = CustomVLAConfig()
    for name in CustomVLAConfig.__annotations__:
        assert getattr(model, name) == getattr(defaults, name), name


def test_plain_progress_lines_without_tqdm(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(trainer_module, 'tqdm', None)
    trainer = Trainer(make_config(dataset, tmp_path / 'out', max_steps=4, eval_every=4),
                      show_progress=True)
    trainer.train()
    trainer.close()
    printed = capsys.readouterr().out
    assert 'step 2/4  loss ' in printed and 'samples/s' in printed
    assert 'step 4: validation loss' in printed


# --- command line -----------------------------------------------------------------------------

def test_cli_trains_and_reports_config_errors(dataset, tmp_path, capsys):
    config_file = tmp_path / 'train.yaml'
    config_file.write_text(yaml.safe_dump(make_config(dataset, tmp_path / 'out').to_dict()))
    assert train_main([str(config_file), '--set', 'max_steps=2', '--no-progress']) == 0
    assert (tmp_path / 'out' / 'final' / 'model.safetensors').is_file()
    assert train_main([str(config_file), '--set', 'max_steps=3', '--resume',
                       '--no-progress']) == 0
    assert json.loads((tmp_path / 'out' / 'final' / 'training_args.json').read_text())[
        'step'] == 3
    capsys.readouterr()
    assert train_main([str(config_file), '--set', 'batch_sise=4']) == 2
    assert "unknown training config key(s) ['batch_sise']" in capsys.readouterr().err
    assert train_main([str(tmp_path / 'missing.yaml')]) == 2
    assert 'missing.yaml does not exist' in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_with_gloo(dataset, tmp_path):
    config_file = tmp_path / 'train.yaml'
    config = make_config(dataset, tmp_path / 'out', max_steps=4, checkpoint_every=2,
                         eval_every=2)
    config_file.write_text(yaml.safe_dump(config.to_dict()))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HUB_OFFLINE': '1'}
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
         '-m', 'humanoid_vla.training.cli', str(config_file)],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    extra = json.loads((tmp_path / 'out' / 'final' / 'training_args.json').read_text())
    assert extra['world_size'] == 2 and extra['step'] == 4
    assert len(extra['config']['data']) == 1
    state = torch.load(tmp_path / 'out' / 'checkpoint-4' / 'training_state.pt',
                       weights_only=True)
    assert len(state['rng']) == 2 and state['step'] == 4
    assert CustomVLAPolicy(tmp_path / 'out' / 'final').predict(
        Observation(image=np.zeros((16, 16, 3), np.uint8), instruction='move left')).shape == (
        1, 8)


def test_cache_frames_trains_from_the_frames_it_kept(dataset, tmp_path):
    config = make_config(dataset, tmp_path / 'out', max_steps=3, eval_every=3,
                         augment=False, cache_frames=True)
    trainer = run_training(config)
    # Three steps of 8 filled some of the training cache, and validation read all of its own.
    assert 0 < trainer.train_data._cached.sum() <= 3 * 8
    assert trainer.valid_data._cached.all()
    assert trainer.valid_losses and np.isfinite(trainer.valid_losses[-1][1])
    with pytest.raises(TrainingConfigError, match='cache_frames'):
        make_config(dataset, tmp_path / 'a', augment=True, cache_frames=True)


def write_paraphrases(path: Path, probability: float = 1.0) -> Path:
    """Write a paraphrase table for the fixture's two instructions (three phrasings each)."""
    path.write_text(yaml.safe_dump({'probability': probability, 'groups': {
        'left': ['move left', 'go to the left', 'head left'],
        'right': ['move right', 'go to the right', 'head right']}}))
    return path


def test_instruction_paraphrases_rewrite_training_instructions_only(dataset, tmp_path):
    table = write_paraphrases(tmp_path / 'paraphrases.yaml')
    trainer = Trainer(make_config(dataset, tmp_path / 'out', max_steps=6, eval_every=0,
                                  instruction_paraphrases=str(table)), show_progress=False)
    cache = trainer.model.instruction_cache
    variants = {'move left', 'go to the left', 'head left',
                'move right', 'go to the right', 'head right'}
    assert all(text in cache for text in variants)  # encoded once, before the loop
    misses = cache.misses
    seen = record_instructions(trainer.model)
    trainer.train()
    # Probability 1: no recorded phrasing reaches a training step, and both others do.
    assert seen and set(seen) <= variants - set(INSTRUCTIONS)
    assert {'head left', 'go to the left'} <= set(seen)
    assert cache.misses == misses
    seen.clear()
    trainer.evaluate()
    trainer.close()
    assert seen and set(seen) <= set(INSTRUCTIONS)  # validation keeps the recorded words


def test_instruction_paraphrase_draws_follow_seed_and_step(dataset, tmp_path):
    table = write_paraphrases(tmp_path / 'paraphrases.yaml', probability=0.5)

    def training_texts(name: str, seed: int) -> list[str]:
        trainer = Trainer(make_config(dataset, tmp_path / name, max_steps=6, seed=seed,
                                      instruction_paraphrases=str(table)), show_progress=False)
        seen = record_instructions(trainer.model)
        trainer.train()
        trainer.close()
        return seen

    first, again, other = training_texts('a', 0), training_texts('b', 0), training_texts('c', 1)
    assert first == again
    assert first != other
    # Probability 0.5: recorded and rewritten phrasings both reach training.
    assert set(first) & set(INSTRUCTIONS) and set(first) - set(INSTRUCTIONS)


def test_instruction_paraphrases_path_is_relative_to_the_config_and_checked(dataset, tmp_path):
    write_paraphrases(tmp_path / 'paraphrases.yaml')
    (tmp_path / 'train.yaml').write_text(yaml.safe_dump(
        {'data': [str(dataset)], 'output_dir': str(tmp_path / 'out'), 'model': TRAINING_MODEL,
         'instruction_paraphrases': 'paraphrases.yaml'}))
    config = TrainingConfig.from_yaml(tmp_path / 'train.yaml')
    assert Path(config.instruction_paraphrases) == tmp_path / 'paraphrases.yaml'
    assert config.paraphrase_table().variants('head right')[0] == 'head right'
    with pytest.raises(FileNotFoundError, match='instruction_paraphrases'):
        make_config(dataset, tmp_path / 'a', instruction_paraphrases=str(tmp_path / 'no.yaml'))
    (tmp_path / 'bad.yaml').write_text(yaml.safe_dump(
        {'probability': 2.0, 'groups': {'left': ['move left', 'go left']}}))
    with pytest.raises(TrainingConfigError, match='probability'):
        make_config(dataset, tmp_path / 'a', instruction_paraphrases=str(tmp_path / 'bad.yaml'))
