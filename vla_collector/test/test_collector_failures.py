"""Crashes, restarts, a full disk and bad paths: what is saved stays saved and valid."""

import resource
import shutil
import subprocess
import sys
import time

from humanoid_vla.data import validate_file
import pytest
from std_srvs.srv import SetBool

pytestmark = pytest.mark.ros


def record(harness, instruction: str, seconds: float = 0.6, success: bool = True):
    """Record one episode through the services; return the stop response."""
    started = harness.start(instruction)
    assert started.accepted, started.message
    time.sleep(seconds)
    return harness.stop(success)


def demos(index) -> list[str]:
    """Return the demos of a dataset, after checking that it validates."""
    report = validate_file(index)
    assert report.ok, report.problems
    return [episode.name for episode in report.episodes]


def validate_command(*files) -> subprocess.CompletedProcess:
    """Run vla-validate-episodes (the installed command, else its module)."""
    command = shutil.which('vla-validate-episodes')
    argv = [command] if command else [sys.executable, '-m', 'humanoid_vla.data.validate']
    return subprocess.run([*argv, *map(str, files)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_sigkill_at_any_moment_keeps_every_finished_episode(harness, start_collector, tmp_path):
    index = tmp_path / 'demos.hdf5'
    process = start_collector(tmp_path)
    stopped = record(harness, 'one')
    assert stopped.success, stopped.message
    process.kill()  # Right after stop returned: the episode must already be durable.
    assert demos(index) == ['demo_0']

    process = start_collector(tmp_path)
    assert harness.start('two').accepted
    time.sleep(0.7)
    process.kill()  # Mid-episode.
    assert demos(index) == ['demo_0']
    assert any('unfinished episode' in w for w in validate_file(index).warnings)

    process = start_collector(tmp_path)
    assert 'interrupted by a crash' in process.output
    stopped = record(harness, 'three')
    assert stopped.success, stopped.message
    assert demos(index) == ['demo_0', 'demo_2']  # Numbered after the interrupted demo_1.
    assert harness.start('four').accepted
    process.kill()  # Right after the next episode started.
    assert demos(index) == ['demo_0', 'demo_2']

    process = start_collector(tmp_path)
    assert harness.start('five').accepted
    time.sleep(0.6)
    harness.stop_client.call_async(SetBool.Request(data=True))  # Not waiting for the answer.
    time.sleep(0.01)
    process.kill()  # While the stop is being served: saved or not, never damaged.
    assert demos(index) in (['demo_0', 'demo_2'], ['demo_0', 'demo_2', 'demo_4'])

    # The command line validator agrees, and fails on truncated copies of either file kind.
    assert validate_command(index).returncode == 0
    for victim in ('demos.hdf5', 'demos.episodes/demo_0.hdf5'):
        copy = tmp_path / f'copy_{victim.count("/")}'
        shutil.copytree(tmp_path, copy, ignore=shutil.ignore_patterns('copy_*', '.writer.lock'))
        with open(copy / victim, 'r+b') as file:
            file.truncate(file.seek(0, 2) // 2)
        result = validate_command(copy / 'demos.hdf5')
        assert result.returncode == 1, result.stdout + result.stderr
        assert 'INVALID' in result.stdout


def test_restart_appends_and_sigint_mid_episode_exits_cleanly(harness, start_collector,
                                                              tmp_path):
    index = tmp_path / 'demos.hdf5'
    process = start_collector(tmp_path)
    assert record(harness, 'pick the cup').success
    assert harness.start('interrupted by ctrl-c').accepted
    time.sleep(0.4)
    assert process.stop() == 0, process.output
    assert 'stays unfinished' in process.output
    before = demos(index)

    process = start_collector(tmp_path)
    assert f'holds {len(before)} episodes' in process.output
    assert record(harness, 'place the cup').success
    assert len(demos(index)) == len(before) + 1
    assert process.stop() == 0


def test_full_disk_ends_the_episode_and_keeps_what_was_saved(harness, start_collector,
                                                             tmp_path, wait_until):
    index = tmp_path / 'demos.hdf5'
    process = start_collector(tmp_path)
    assert record(harness, 'small one', 0.3).success
    # From now on no file of the recorder may grow past 60 kB: the disk is "full".
    pid = process.process.pid
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (60_000, hard))  # The soft limit only.
    try:
        assert harness.start('too big to fit').accepted
        assert wait_until(lambda: 'write error' in process.output, timeout=15.0), process.output
        stopped = harness.stop(True)
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
    assert not stopped.success and 'write error' in stopped.message, stopped.message
    assert process.process.poll() is None
    assert demos(index) == ['demo_0']
    assert not list((tmp_path / 'demos.episodes').glob('*.partial.hdf5'))
    # Space is back: recording goes on in the same dataset.
    stopped = record(harness, 'after the disk was freed', 0.3)
    assert stopped.success, stopped.message
    assert demos(index) == ['demo_0', stopped.message.split()[0]]


@pytest.mark.parametrize('where', ['outside', 'under_a_file'])
def test_unusable_dataset_paths_refuse_episodes_with_the_reason(harness, start_collector,
                                                                tmp_path, where):
    if where == 'outside':
        data_dir, params, reason = tmp_path / 'data', {'dataset_name': '../escape'}, 'outside'
    else:
        (tmp_path / 'a_file').write_text('not a directory')
        data_dir, params, reason = tmp_path / 'a_file' / 'data', {}, 'cannot create data_dir'
    process = start_collector(data_dir, **params)
    started = harness.start('anything')
    assert not started.accepted and reason in started.message, started.message
    assert process.process.poll() is None and 'dataset NOT open' in process.output
    assert not (tmp_path / 'escape.hdf5').exists()
    assert process.stop() == 0
