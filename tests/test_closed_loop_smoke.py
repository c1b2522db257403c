"""vla-sim-record records expert demonstrations through the real bridge and recorder nodes."""

import shutil

from humanoid_vla.data.validate import validate_file
import pytest
from vla_sim_bridge.experiments import record

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _need_the_nodes():
    pytest.importorskip('rclpy')
    pytest.importorskip('mujoco')
    if shutil.which('vla_sim_bridge') is None:
        pytest.skip('vla_sim_bridge is not installed (make setup)')


def test_record_two_expert_episodes(tmp_path):
    _need_the_nodes()
    args = record.build_parser().parse_args([
        '--episodes', '2', '--out', str(tmp_path / 'demos'), '--name', 'smoke',
        '--seed-start', '900', '--families', 'touch'])
    summary = record.record(args)
    assert summary['valid'] and summary['episodes'] == 2
    # The expert completes ~97 % of touches through the nodes (a touch counts only if the named
    # object is touched first; seed 901 is one it misses): each episode's success flag must say
    # what the bridge's check said.
    assert summary['expert_success'] >= 1
    report = validate_file(tmp_path / 'demos' / 'smoke.hdf5')
    assert report.ok, report.problems
    assert len(report.episodes) == 2
    assert sum(e.success for e in report.episodes) == summary['expert_success']
    assert all(e.length > 0 for e in report.episodes)
    assert all('touch' in e.instruction or 'tap' in e.instruction for e in report.episodes)

    # Recording again into the same dataset is refused (it would add to it) unless asked for.
    again = ['--episodes', '1', '--out', str(tmp_path / 'demos'), '--name', 'smoke',
             '--seed-start', '902', '--families', 'touch']
    with pytest.raises(SystemExit, match='already holds 2 episodes; pass --append'):
        record.main(again)
    assert len(validate_file(tmp_path / 'demos' / 'smoke.hdf5').episodes) == 2
    assert record.main([*again, '--append']) == 0
    assert record.recorded_episodes(tmp_path / 'demos' / 'smoke.hdf5') == 3
