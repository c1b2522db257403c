"""The core library passes the same ament_flake8 and ament_pep257 checks as the ROS packages."""

import pathlib

from ament_flake8.main import main_with_errors
from ament_pep257.main import main as pep257_main
import pytest

CORE = pathlib.Path(__file__).resolve().parents[1]
CHECKED = [str(CORE / 'humanoid_vla'), str(CORE / 'tests'), str(CORE.parent / 'benchmarks')]


@pytest.mark.linter
@pytest.mark.flake8
def test_flake8():
    rc, errors = main_with_errors(argv=CHECKED)
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    assert pep257_main(argv=CHECKED[:1]) == 0, 'Found docstring errors'
