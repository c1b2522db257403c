"""Style check of this package with ament_flake8 (the ROS 2 lint every package runs)."""

import pathlib

from ament_flake8.main import main_with_errors
import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = main_with_errors(argv=[str(PACKAGE)])
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
