"""The episode validator: what it reports and the exit status of its command."""

import os
from pathlib import Path
import shutil
import subprocess
import sys

import h5py
from humanoid_vla.data import consolidate, EpisodeWriter, validate_file
from humanoid_vla.data.validate import main
import numpy as np
import pytest


def _write_dataset(path, episodes=3, steps=6):
    with EpisodeWriter(path, sources={'cam': '/cam'}) as writer:
        for i in range(episodes):
            writer.begin_episode(f'put block {i} in the bowl')
            for t in range(steps):
                writer.add_step(
                    {'front_rgb': np.full((16, 16, 3), t, np.uint8),
                     'joint_states': np.full(4, t, np.float32)},
                    np.full(3, t, np.float32), 0.1 * t)
            writer.end_episode(success=i % 2 == 0)
    return path


@pytest.fixture
def dataset(tmp_path):
    return _write_dataset(tmp_path / 'ds.hdf5')


def _truncate_half(path):
    os.truncate(path, os.path.getsize(path) // 2)


def test_good_file_exits_0_and_lists_episodes(dataset, capsys):
    assert main([str(dataset)]) == 0
    out = capsys.readouterr().out
    assert '3 episodes, 18 steps' in out
    assert 'demo_2' in out and "'put block 2 in the bowl'" in out and 'failure' in out
    assert out.strip().endswith('OK')
    assert main([str(dataset), '--quiet']) == 0
    assert capsys.readouterr().out == ''


def test_truncated_index_exits_1(dataset, capsys):
    _truncate_half(dataset)
    assert main([str(dataset)]) == 1
    out = capsys.readouterr().out
    assert 'problem: cannot open' in out and 'INVALID' in out


def test_truncated_episode_file_exits_1(dataset, capsys):
    _truncate_half(dataset.parent / 'ds.episodes' / 'demo_1.hdf5')
    assert main([str(dataset), '--quiet']) == 1
    out = capsys.readouterr().out
    assert 'problem: demo_1' in out and 'ds.episodes/demo_1.hdf5' in out
    assert 'demo_0' not in out  # the intact episodes are fine


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main([]) == 2
    assert main([str(tmp_path / 'missing.hdf5')]) == 2
    assert main(['--bogus', str(tmp_path)]) == 2
    assert 'usage' in capsys.readouterr().err


def test_console_script_is_installed(dataset):
    script = shutil.which('vla-validate-episodes', path=str(Path(sys.executable).parent))
    assert script, 'run: pip install -e src'
    good = subprocess.run([script, str(dataset)], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0 and 'OK' in good.stdout, good.stderr
    module = subprocess.run([sys.executable, '-m', 'humanoid_vla.data.validate', '--quiet',
                             str(dataset)], capture_output=True, text=True, timeout=60)
    assert module.returncode == 0 and module.stdout == ''


def _corrupt(path, edit):
    """Apply ``edit`` to the episode file of demo_0 (opened read-write) or the index."""
    with h5py.File(path, 'r+') as handle:
        edit(handle)


def _set_attr(key, value):
    return lambda h: h['data/demo_0'].attrs.__setitem__(key, value)


def _replace_dataset(key, value):
    def edit(handle):
        del handle[f'data/demo_0/{key}']
        handle[f'data/demo_0/{key}'] = value
    return edit


CORRUPTIONS = {
    'num_samples': (_set_attr('num_samples', 7), 'num_samples is 7'),
    'instruction': (_set_attr('language_instruction', ''), 'language_instruction'),
    'nan action': (_replace_dataset('actions', np.full((6, 3), np.nan, np.float32)), 'NaN'),
    'time travel': (_replace_dataset('timestamps', np.array([0, 1, 2, 3, 2, 5.0])),
                    'back in time'),
    'no actions': (lambda h: h['data/demo_0'].__delitem__('actions'), 'actions is missing'),
    'no obs': (lambda h: h['data/demo_0'].__delitem__('obs'), 'obs group'),
    'image dtype': (_replace_dataset('obs/front_rgb', np.zeros((6, 16, 16, 3), np.float32)),
                    'must be uint8'),
    'short obs': (_replace_dataset('obs/joint_states', np.zeros((5, 4), np.float32)),
                  'obs/joint_states has 5 rows'),
}


@pytest.mark.parametrize('case', sorted(CORRUPTIONS))
def test_each_defect_in_an_episode_is_reported(dataset, case):
    edit, expected = CORRUPTIONS[case]
    _corrupt(dataset.parent / 'ds.episodes' / 'demo_0.hdf5', edit)
    report = validate_file(dataset)
    assert not report.ok
    assert any(expected in p and 'demo_0' in p for p in report.problems), report.problems


def test_index_defects_are_reported(dataset):
    def edit(handle):
        handle.attrs['schema_version'] = 99
        handle['data'].attrs['total'] = 1
        del handle['mask/valid']
        handle['mask/valid'] = np.array([b'demo_7'])
    _corrupt(dataset, edit)
    problems = '\n'.join(validate_file(dataset).problems)
    for expected in ('schema_version is 99', 'total is 1', "references 'demo_7'", 'in no mask'):
        assert expected in problems


def test_dangling_link_is_reported(dataset):
    _corrupt(dataset, lambda h: h['data'].__setitem__(
        'demo_9', h5py.ExternalLink('ds.episodes/demo_9.hdf5', '/data/demo_9')))
    report = validate_file(dataset)
    assert [p for p in report.problems if 'demo_9' in p and 'broken external link' in p]
    assert report.episodes[-1].name == 'demo_9' and report.episodes[-1].length is None


def test_consolidated_file_validates(dataset, tmp_path):
    out = consolidate(dataset, tmp_path / 'shared.hdf5')
    report = validate_file(out)
    assert report.ok and [e.length for e in report.episodes] == [6, 6, 6]
