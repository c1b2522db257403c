"""Copyright/licence header check with ament_copyright, where that linter is installed."""

import pathlib

import pytest

ament_copyright_main = pytest.importorskip(
    'ament_copyright.main',
    reason='ament_copyright is not installable from PyPI; runs on machines with ROS 2',
).main

PACKAGE = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    rc = ament_copyright_main(argv=[str(PACKAGE), str(PACKAGE / 'test')])
    assert rc == 0, 'Found errors'
