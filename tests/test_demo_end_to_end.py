"""The demo's processes come up, the goal ends with a result, outputs exist, nothing is left."""

import json
import os
import shutil
import subprocess

import pytest

pytest.importorskip('rclpy')
pytest.importorskip('mujoco')
from humanoid_vla.actions import ActionSpec  # noqa: E402, I100 (after the skips)
from humanoid_vla.checkpoint import save_untrained_checkpoint  # noqa: E402
from humanoid_vla.data import validate_file  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_runs_an_instruction_records_it_and_stops_every_process(workspace, tmp_path):
    checkpoint = workspace / 'checkpoints' / 'default'
    if not (checkpoint / 'config.json').is_file():
        checkpoint = save_untrained_checkpoint(
            tmp_path / 'ckpt', ActionSpec(('right_hand_pose', 'right_gripper')))
    out = tmp_path / 'demo'
    ran = subprocess.run([shutil.which('vla-demo'), '--checkpoint', str(checkpoint),
                          '--max-steps', '5', '--out', str(out)],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert ran.stdout.count('  step ') >= 4, ran.stdout[-2000:]
    assert 'result: success=' in ran.stdout, ran.stdout[-2000:]
    # All 5 steps ran (a goal that ended early, e.g. in CAMERA_TIMEOUT, means a starved node).
    assert 'result: success=True' in ran.stdout or 'steps=5:' in ran.stdout, ran.stdout[-2000:]
    stopped = ran.stdout[ran.stdout.find('processes stopped'):]
    assert 'vla_server exit 0' in stopped and 'vla_sim exit 0' in stopped, stopped[-4000:]
    report = validate_file(out / 'demo_episodes.hdf5')
    # The recorder's line (steps written, dropped as stale) says why when none was saved.
    assert report.ok and len(report.episodes) == 1, ran.stdout[-3000:]
    assert report.episodes[0].instruction == 'pick up the red cup and place it on the plate'
    assert (out / 'head_camera_strip.png').stat().st_size > 10_000
    for name, pid in json.loads((out / 'processes.json').read_text()).items():
        assert not os.path.exists(f'/proc/{pid}'), f'{name} (pid {pid}) is still running'
