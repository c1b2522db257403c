"""The core library never needs rclpy: it imports where rclpy cannot be imported."""

import pathlib
import subprocess
import sys

CORE = pathlib.Path(__file__).resolve().parents[1] / 'src' / 'humanoid_vla'

BLOCK_ROS = """
import importlib, pkgutil, sys
class BlockRos:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('rclpy', 'rcl_interfaces', 'humanoid_interfaces'):
            raise ImportError('ROS is blocked in this test: ' + name)
sys.meta_path.insert(0, BlockRos())
import humanoid_vla
modules = [m.name for m in pkgutil.walk_packages(humanoid_vla.__path__, 'humanoid_vla.')]
for name in modules:
    importlib.import_module(name)
print(len(modules))
"""


def test_every_core_module_imports_with_rclpy_blocked():
    completed = subprocess.run([sys.executable, '-c', BLOCK_ROS], capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert int(completed.stdout.strip()) >= 1


def test_no_core_source_mentions_an_rclpy_import():
    offenders = [str(path) for path in CORE.rglob('*.py')
                 if 'import rclpy' in path.read_text() or 'from rclpy' in path.read_text()]
    assert offenders == []
