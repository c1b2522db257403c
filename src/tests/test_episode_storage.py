"""Round trips, resume, partial episodes, input checks and crash safety of the HDF5 storage."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
from humanoid_vla.data import (
    consolidate,
    EpisodeFormatError,
    EpisodePathError,
    EpisodeReader,
    EpisodeReadError,
    EpisodeStateError,
    EpisodeWriteError,
    EpisodeWriter,
    validate_file,
)
from humanoid_vla.data.schema import compute_split
import numpy as np
import pytest

RNG = np.random.default_rng(0)


def make_steps(count, *, height=12, width=16, action_dim=7, start=0.0):
    """Return ``count`` (observations, action, timestamp) tuples with random content."""
    steps = []
    for t in range(count):
        obs = {
            'front_rgb': RNG.integers(0, 256, (height, width, 3), dtype=np.uint8),
            'wrist_rgb': RNG.integers(0, 256, (height // 2, width // 2, 3), dtype=np.uint8),
            'joint_states': RNG.standard_normal(5).astype(np.float32),
            'ee_pose': RNG.standard_normal(7).astype(np.float32),
        }
        steps.append((obs, RNG.standard_normal(action_dim).astype(np.float32), start + 0.05 * t))
    return steps


def record(writer, instruction, steps, success=True):
    """Record one episode and return its demo name."""
    writer.begin_episode(instruction)
    for obs, action, stamp in steps:
        writer.add_step(obs, action, stamp)
    return writer.end_episode(success)


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / 'ds.hdf5'
    episodes = [make_steps(70), make_steps(3), make_steps(1)]
    names = ['j1', 'j2', 'j3', 'j4', 'j5', 'j6', 'gripper']
    with EpisodeWriter(path, sources={'front': '/camera/front/image_raw'},
                       action_dimension_names=names, image_compression='gzip') as writer:
        for i, steps in enumerate(episodes):
            assert record(writer, f'task {i}', steps, success=i != 1) == f'demo_{i}'
        assert writer.num_demos == 3 and not writer.episode_in_progress

    with EpisodeReader(path) as reader:
        assert reader.demo_names() == ['demo_0', 'demo_1', 'demo_2']
        assert reader.sources == {'front': '/camera/front/image_raw'}
        for i, steps in enumerate(episodes):
            episode = reader.read_demo(f'demo_{i}')
            assert episode.instruction == reader.instruction(f'demo_{i}') == f'task {i}'
            assert episode.success is (i != 1)
            assert reader.num_samples(f'demo_{i}') == len(steps)
            for key in steps[0][0]:
                expected = np.stack([obs[key] for obs, _, _ in steps])
                assert episode.observations[key].dtype == expected.dtype
                np.testing.assert_array_equal(episode.observations[key], expected)
            np.testing.assert_array_equal(episode.actions, np.stack([a for _, a, _ in steps]))
            np.testing.assert_array_equal(episode.timestamps, [s for _, _, s in steps])
            assert episode.actions.dtype == np.float32 and episode.timestamps.dtype == np.float64

    with h5py.File(path, 'r') as handle:
        assert handle.attrs['schema_version'] == 1 and handle.attrs['format'] == 'robomimic'
        assert json.loads(handle.attrs['env_args']) == {}
        assert handle['data'].attrs['total'] == 74
        link = handle['data'].get('demo_0', getlink=True)
        assert isinstance(link, h5py.ExternalLink)
        assert link.filename == 'ds.episodes/demo_0.hdf5'
        demo = handle['data/demo_0']
        assert json.loads(demo.attrs['action_dimension_names']) == names
        frames = demo['obs/front_rgb']
        assert frames.chunks == (1, 12, 16, 3) and frames.compression == 'gzip'
        assert demo['obs/joint_states'].dtype == np.float32
    assert validate_file(path).ok


def test_masks_are_deterministic_and_cover_every_demo(tmp_path):
    path = tmp_path / 'ds.hdf5'
    with EpisodeWriter(path, valid_fraction=0.25) as writer:
        for i in range(8):
            record(writer, 'go', make_steps(1))
    with EpisodeReader(path) as reader:
        train, valid = reader.split('train'), reader.split('valid')
        with pytest.raises(ValueError):
            reader.split('test')
    assert len(valid) == 2 and sorted(train + valid, key=lambda n: int(n[5:])) == [
        f'demo_{i}' for i in range(8)]
    assert compute_split(train + valid, 0.25) == {'train': train, 'valid': valid}
    assert compute_split(['demo_0'], 0.1)['valid'] == []
    assert len(compute_split(['demo_0', 'demo_1'], 0.1)['valid']) == 1
    assert compute_split(['demo_0', 'demo_1'], 0.0)['valid'] == []
    with h5py.File(path, 'r') as handle:
        assert handle['mask/train'].dtype.kind == 'S'


def test_resume_appends_and_sorts_numerically(tmp_path):
    path = tmp_path / 'ds.hdf5'
    with EpisodeWriter(path, sources={'a': 1}) as writer:
        for _ in range(10):
            record(writer, 'first session', make_steps(2))
    with h5py.File(path, 'r') as handle:
        created = handle.attrs['created']
    with EpisodeWriter(path, sources={'b': 2}) as writer:
        assert writer.num_demos == 10
        assert record(writer, 'second session', make_steps(2)) == 'demo_10'
    with EpisodeReader(path) as reader:
        assert reader.demo_names() == [f'demo_{i}' for i in range(11)]
        assert reader.instruction('demo_10') == 'second session'
        assert reader.sources == {'a': 1, 'b': 2}
    with h5py.File(path, 'r') as handle:
        assert handle.attrs['created'] == created


def test_partial_episode_is_never_linked_and_numbering_skips_it(tmp_path):
    path = tmp_path / 'ds.hdf5'
    with EpisodeWriter(path) as writer:
        record(writer, 'done', make_steps(2))
        writer.begin_episode('interrupted')
        writer.add_step(*make_steps(1)[0])
    partial = tmp_path / 'ds.episodes' / 'demo_1.partial.hdf5'
    assert partial.is_file()
    with h5py.File(partial, 'r') as handle:
        assert not handle.attrs['complete']
    with EpisodeReader(path) as reader:
        assert reader.demo_names() == ['demo_0']
    report = validate_file(path)
    assert report.ok and any('demo_1.partial.hdf5' in w for w in report.warnings)
    with EpisodeWriter(path) as writer:
        assert writer.leftover_partials == [partial]
        assert record(writer, 'after restart', make_steps(1)) == 'demo_2'
    assert partial.is_file()


def test_discard_deletes_the_partial_and_reuses_the_number(tmp_path):
    path = tmp_path / 'ds.hdf5'
    with EpisodeWriter(path) as writer:
        writer.begin_episode('oops')
        writer.add_step(*make_steps(1)[0])
        assert writer.episode_in_progress
        writer.discard_episode()
        assert not writer.episode_in_progress
        assert not list((tmp_path / 'ds.episodes').glob('*.partial.hdf5'))
        with pytest.raises(EpisodeStateError):
            writer.discard_episode()
        assert record(writer, 'kept', make_steps(1)) == 'demo_0'


def test_zero_step_episode_is_refused_and_discarded(tmp_path):
    with EpisodeWriter(tmp_path / 'ds.hdf5') as writer:
        writer.begin_episode('nothing happens')
        with pytest.raises(EpisodeFormatError, match='at least one step'):
            writer.end_episode(True)
        assert not writer.episode_in_progress and writer.num_demos == 0
        assert not list((tmp_path / 'ds.episodes').glob('demo_*'))


def test_extra_episode_attributes_are_stored_and_reserved_ones_refused(tmp_path):
    path = tmp_path / 'extra.hdf5'
    with EpisodeWriter(path) as writer:
        writer.begin_episode('carry on')
        for obs, action, stamp in make_steps(2):
            writer.add_step(obs, action, stamp)
        with pytest.raises(EpisodeFormatError, match='success'):
            writer.end_episode(True, {'success': False})
        name = writer.end_episode(True, {'first_segment': 1})
    with EpisodeReader(path) as reader:
        group = reader.demo_group(name)
        assert group.attrs['first_segment'] == 1 and bool(group.attrs['success'])
    assert validate_file(path).ok


def test_state_errors(tmp_path):
    writer = EpisodeWriter(tmp_path / 'ds.hdf5')
    with pytest.raises(EpisodeStateError):
        writer.add_step(*make_steps(1)[0])
    with pytest.raises(EpisodeStateError):
        writer.end_episode(True)
    writer.begin_episode('a')
    with pytest.raises(EpisodeStateError, match='in progress'):
        writer.begin_episode('b')
    with pytest.raises(EpisodeStateError, match='another EpisodeWriter'):
        EpisodeWriter(tmp_path / 'ds.hdf5')
    writer.close()
    with pytest.raises(EpisodeStateError, match='closed'):
        writer.begin_episode('c')


def _good_step():
    obs, action, _ = make_steps(1)[0]
    return obs, action


def _replace(obs, **changes):
    out = dict(obs)
    out.update(changes)
    return out


FORMAT_CASES = {
    'image not uint8': lambda o, a: (_replace(o, front_rgb=o['front_rgb'].astype(np.float32)), a),
    'image 2-D': lambda o, a: (_replace(o, front_rgb=o['front_rgb'][..., 0]), a),
    'image 4 channels': lambda o, a: (
        _replace(o, front_rgb=np.zeros((12, 16, 4), np.uint8)), a),
    'image size changes': lambda o, a: (
        _replace(o, front_rgb=np.zeros((10, 16, 3), np.uint8)), a),
    'missing key': lambda o, a: ({k: v for k, v in o.items() if k != 'ee_pose'}, a),
    'extra key': lambda o, a: (_replace(o, extra=np.zeros(2)), a),
    'lowdim shape changes': lambda o, a: (_replace(o, joint_states=np.zeros(6)), a),
    'lowdim not numeric': lambda o, a: (_replace(o, joint_states=np.array(['x'])), a),
    'lowdim nan': lambda o, a: (_replace(o, joint_states=np.full(5, np.nan)), a),
    'bad key': lambda o, a: (_replace(o, **{'a/b': np.zeros(2)}), a),
    'empty observations': lambda o, a: ({}, a),
    'action 2-D': lambda o, a: (o, a[None]),
    'action empty': lambda o, a: (o, np.zeros(0)),
    'action length changes': lambda o, a: (o, a[:-1]),
    'action nan': lambda o, a: (o, np.full_like(a, np.nan)),
    'action inf': lambda o, a: (o, np.full_like(a, np.inf)),
    'action not numeric': lambda o, a: (o, np.array(['a'] * 7)),
}


@pytest.mark.parametrize('case', sorted(FORMAT_CASES))
def test_bad_step_is_rejected_and_episode_goes_on(tmp_path, case):
    with EpisodeWriter(tmp_path / 'ds.hdf5') as writer:
        writer.begin_episode('check inputs')
        obs, action = _good_step()
        writer.add_step(obs, action, 0.0)
        bad_obs, bad_action = FORMAT_CASES[case](obs, action)
        with pytest.raises(EpisodeFormatError):
            writer.add_step(bad_obs, bad_action, 1.0)
        writer.add_step(obs, action, 1.0)
        writer.end_episode(True)
    with EpisodeReader(tmp_path / 'ds.hdf5') as reader:
        assert reader.num_samples('demo_0') == 2


@pytest.mark.parametrize('stamp', [float('nan'), float('inf'), 'soon', -1.0])
def test_bad_timestamp_is_rejected(tmp_path, stamp):
    with EpisodeWriter(tmp_path / 'ds.hdf5') as writer:
        writer.begin_episode('time')
        writer.add_step(*_good_step(), 0.0)
        with pytest.raises(EpisodeFormatError):
            writer.add_step(*_good_step(), stamp)


def test_other_format_errors(tmp_path):
    with EpisodeWriter(tmp_path / 'ds.hdf5', action_dimension_names=['x', 'y']) as writer:
        for instruction in ('', '   ', None):
            with pytest.raises(EpisodeFormatError):
                writer.begin_episode(instruction)
        writer.begin_episode('names')
        with pytest.raises(EpisodeFormatError, match='action_dimension_names'):
            writer.add_step(*_good_step(), 0.0)
    assert issubclass(EpisodeFormatError, ValueError)
    with pytest.raises(ValueError, match='image_compression'):
        EpisodeWriter(tmp_path / 'x.hdf5', image_compression='zstd')
    with pytest.raises(ValueError, match='valid_fraction'):
        EpisodeWriter(tmp_path / 'x.hdf5', valid_fraction=1.0)


def test_path_outside_root_is_refused(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    (tmp_path / 'elsewhere').mkdir()
    os.symlink(tmp_path / 'elsewhere', root / 'sneaky')
    for bad in (tmp_path / 'ds.hdf5', root / '..' / 'ds.hdf5', root / 'sneaky' / 'ds.hdf5'):
        with pytest.raises(EpisodePathError, match='outside the allowed root'):
            EpisodeWriter(bad, root_dir=root)
    with pytest.raises(EpisodePathError, match='must end in'):
        EpisodeWriter(root / 'ds.txt', root_dir=root)
    with EpisodeWriter(root / 'ds.hdf5', root_dir=root) as writer:
        record(writer, 'inside', make_steps(1))
    assert not list(tmp_path.glob('elsewhere/*'))


def test_refuses_to_overwrite_foreign_or_consolidated_files(tmp_path):
    foreign = tmp_path / 'foreign.hdf5'
    with h5py.File(foreign, 'w') as handle:
        handle['x'] = 1
    with pytest.raises(EpisodePathError, match='not an episode index'):
        EpisodeWriter(foreign)
    assert not (tmp_path / 'foreign.episodes').exists()
    with EpisodeWriter(tmp_path / 'ds.hdf5') as writer:
        record(writer, 'a', make_steps(1))
    consolidate(tmp_path / 'ds.hdf5', tmp_path / 'all.hdf5')
    with pytest.raises(EpisodePathError, match='consolidated'):
        EpisodeWriter(tmp_path / 'all.hdf5')
    garbage = tmp_path / 'garbage.hdf5'
    garbage.write_bytes(b'not hdf5 at all')
    with pytest.raises(EpisodeWriteError, match='delete it and reopen'):
        EpisodeWriter(garbage)


def test_reading_with_a_different_cwd(tmp_path, monkeypatch):
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    monkeypatch.chdir(data_dir)
    steps = make_steps(4)
    with EpisodeWriter('ds.hdf5') as writer:
        record(writer, 'relative', steps)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with EpisodeReader(data_dir / 'ds.hdf5') as reader:
        np.testing.assert_array_equal(reader.read_demo('demo_0').actions,
                                      np.stack([a for _, a, _ in steps]))
    assert validate_file(data_dir / 'ds.hdf5').ok
    # Opened by a relative path, then the cwd changes: HDF5 remembers the index's directory.
    monkeypatch.chdir(data_dir)
    with EpisodeReader('ds.hdf5') as reader:
        monkeypatch.chdir(elsewhere)
        assert reader.instruction('demo_0') == 'relative'


def test_link_falling_back_to_the_cwd_is_detected(tmp_path, monkeypatch):
    with EpisodeWriter(tmp_path / 'ds.hdf5') as writer:
        record(writer, 'real', make_steps(2))
    # A copy of the layout in the cwd, and the real episode file gone: HDF5 would read the copy.
    decoy = tmp_path / 'cwd'
    (decoy / 'ds.episodes').mkdir(parents=True)
    os.replace(tmp_path / 'ds.episodes' / 'demo_0.hdf5', decoy / 'ds.episodes' / 'demo_0.hdf5')
    monkeypatch.chdir(decoy)
    with h5py.File(tmp_path / 'ds.hdf5', 'r') as handle:
        assert handle['data/demo_0'].attrs['language_instruction'] == 'real'  # the trap
    with EpisodeReader(tmp_path / 'ds.hdf5') as reader:
        with pytest.raises(EpisodeReadError, match='resolved the link'):
            reader.read_demo('demo_0')
    assert not validate_file(tmp_path / 'ds.hdf5').ok


def test_unindexed_episode_file_is_linked_on_reopen(tmp_path):
    path = tmp_path / 'ds.hdf5'
    with EpisodeWriter(path) as writer:
        record(writer, 'a', make_steps(2))
        old_index = path.read_bytes()
        record(writer, 'b', make_steps(3))
    # The state a crash between the rename of demo_1 and the index update leaves behind.
    path.write_bytes(old_index)
    report = validate_file(path)
    assert report.ok and any('demo_1.hdf5 is not linked' in w for w in report.warnings)
    with EpisodeWriter(path) as writer:
        assert writer.demo_names == ['demo_0', 'demo_1']
    report = validate_file(path)
    assert report.ok and not report.warnings
    assert [e.length for e in report.episodes] == [2, 3]


def test_deleted_episode_file_is_dropped_from_the_index(tmp_path):
    path = tmp_path / 'ds.hdf5'
    with EpisodeWriter(path) as writer:
        for name in 'abc':
            record(writer, name, make_steps(2))
    os.remove(tmp_path / 'ds.episodes' / 'demo_1.hdf5')
    report = validate_file(path)
    assert not report.ok and any('demo_1' in p for p in report.problems)
    with EpisodeWriter(path) as writer:
        assert writer.demo_names == ['demo_0', 'demo_2']
        assert record(writer, 'd', make_steps(1)) == 'demo_3'
    assert validate_file(path).ok


def test_consolidate_is_self_contained_and_identical(tmp_path):
    path = tmp_path / 'ds.hdf5'
    with EpisodeWriter(path, sources={'cam': '/cam'}) as writer:
        for i in range(3):
            record(writer, f'task {i}', make_steps(5 + i))
    out = consolidate(path, tmp_path / 'shared' / '..' / 'all.hdf5')
    assert out == tmp_path / 'all.hdf5'
    with h5py.File(out, 'r') as handle:
        assert all(isinstance(handle['data'].get(n, getlink=True), h5py.HardLink)
                   for n in handle['data'])
        assert handle['data/demo_0/obs/front_rgb'].compression == 'lzf'
    os.rename(tmp_path / 'ds.episodes', tmp_path / 'gone')  # out must not need them
    assert validate_file(out).ok
    os.rename(tmp_path / 'gone', tmp_path / 'ds.episodes')
    with EpisodeReader(path) as a, EpisodeReader(out) as b:
        assert a.demo_names() == b.demo_names()
        assert a.split('valid') == b.split('valid') and b.sources == {'cam': '/cam'}
        for name in a.demo_names():
            ea, eb = a.read_demo(name), b.read_demo(name)
            assert (ea.instruction, ea.success) == (eb.instruction, eb.success)
            for key in ea.observations:
                np.testing.assert_array_equal(ea.observations[key], eb.observations[key])
            np.testing.assert_array_equal(ea.actions, eb.actions)
            np.testing.assert_array_equal(ea.timestamps, eb.timestamps)
    with pytest.raises(EpisodePathError, match='exists'):
        consolidate(path, out)
    os.remove(tmp_path / 'ds.episodes' / 'demo_1.hdf5')
    with pytest.raises(EpisodeReadError, match='demo_1'):
        consolidate(path, tmp_path / 'broken.hdf5')
    assert not (tmp_path / 'broken.hdf5').exists()
    assert not (tmp_path / 'broken.hdf5.tmp').exists()


_DISK_FULL_CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from humanoid_vla.data import EpisodeWriter, EpisodeWriteError, EpisodeStateError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # exceeding RLIMIT_FSIZE gives EFBIG instead
    obs = lambda: {'cam_rgb': np.random.randint(0, 256, (64, 64, 3), dtype=np.uint8)}
    writer = EpisodeWriter(sys.argv[1], image_compression=None)
    writer.begin_episode('small')
    writer.add_step(obs(), np.zeros(3), 0.0)
    writer.end_episode(True)
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, resource.RLIM_INFINITY))
    writer.begin_episode('too big')
    try:
        for t in range(200):
            writer.add_step(obs(), np.zeros(3), t)
        writer.end_episode(True)
        print('no error')
    except EpisodeWriteError as exc:
        print('write error:', exc)
    try:
        writer.add_step(obs(), np.zeros(3), 500.0)
    except EpisodeStateError:
        print('poisoned')
    writer.discard_episode()
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    writer.begin_episode('after')
    writer.add_step(obs(), np.zeros(3), 0.0)
    print('committed', writer.end_episode(True))
""")


def test_disk_error_raises_write_error_and_spares_committed_episodes(tmp_path):
    path = tmp_path / 'ds.hdf5'
    result = subprocess.run([sys.executable, '-c', _DISK_FULL_CHILD, str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'write error:' in result.stdout and 'poisoned' in result.stdout, result.stdout
    assert 'committed demo_1' in result.stdout
    report = validate_file(path)
    assert report.ok, report.problems
    assert [(e.name, e.length) for e in report.episodes] == [('demo_0', 1), ('demo_1', 1)]


_RECORDER_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from humanoid_vla.data import EpisodeWriter
    writer = EpisodeWriter(sys.argv[1], image_compression='lzf')
    print('ready', writer.num_demos, flush=True)
    steps = int(sys.argv[2])
    while True:
        writer.begin_episode(f'episode {writer.num_demos}')
        for t in range(steps):
            frame = np.full((24, 32, 3), t % 256, dtype=np.uint8)
            writer.add_step({'cam_rgb': frame, 'joint_states': np.full(6, t, np.float32)},
                            np.full(4, t, np.float32), 0.01 * t)
        print('committing', flush=True)
        writer.end_episode(True)
        print('committed', writer.num_demos, flush=True)
""")

# (what to wait for, how long after it) before the SIGKILL.
_KILL_POINTS = [
    ('start', 0.2), ('start', 0.5), ('start', 1.0),
    ('committing', 0.0), ('committing', 0.001), ('committing', 0.003),
    ('committed', 0.0), ('committing', 0.0005),
]


def _run_and_kill(path, wait_for, delay):
    """Start the recorder, SIGKILL it at the chosen moment; return the last committed count."""
    child = subprocess.Popen([sys.executable, '-c', _RECORDER_CHILD, str(path), '40'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        if wait_for == 'start':
            time.sleep(delay)
        else:
            deadline = time.monotonic() + 30
            seen = 0
            while time.monotonic() < deadline:
                line = child.stdout.readline()
                assert line, child.stderr.read()
                lines.append(line.split())
                if lines[-1][0] == wait_for:
                    seen += 1
                    if seen == 2:  # the second one, so the first commit of this run is in
                        break
            time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    # The kill can land in the middle of a print: a last line without its newline is cut short.
    lines += [line.split() for line in out.splitlines(keepends=True) if line.endswith('\n')]
    counts = [int(words[1]) for words in lines if words and words[0] in ('ready', 'committed')]
    return max(counts) if counts else None


def test_sigkill_at_any_moment_loses_no_committed_episode(tmp_path):
    path = tmp_path / 'ds.hdf5'
    with EpisodeWriter(path) as writer:
        record(writer, 'seed', make_steps(3))
    before = 1
    for wait_for, delay in _KILL_POINTS:
        committed = _run_and_kill(path, wait_for, delay)
        report = validate_file(path)
        assert report.ok, (wait_for, delay, report.problems)
        linked = len(report.episodes)
        # A kill after the index replace but before the print links one more than was printed;
        # a kill between the rename and the index replace links it on the next open.
        low = before if committed is None else committed
        assert low <= linked <= low + 1, (wait_for, delay, committed, linked)
        for episode in report.episodes[1:]:
            assert episode.length == 40 and episode.instruction.startswith('episode ')
        before = linked
    with EpisodeWriter(path) as writer:  # relinks anything renamed just before a kill
        final = writer.num_demos
    assert final >= before
    report = validate_file(path)
    assert report.ok and not any('not linked' in w for w in report.warnings)
    with EpisodeReader(path) as reader:
        names = reader.demo_names()
        assert len(names) == final
        last = reader.read_demo(names[-1])
        np.testing.assert_array_equal(last.actions[:, 0], np.arange(40, dtype=np.float32))
        assert last.observations['cam_rgb'][39].max() == 39
