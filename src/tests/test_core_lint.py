"""The core library, the sim bridge and the tests pass the ament_flake8 and pep257 checks."""

import pathlib

from ament_flake8.main import main_with_errors
from ament_pep257.main import main as pep257_main
import pytest

CORE = pathlib.Path(__file__).resolve().parents[1]
CHECKED = [str(CORE / 'humanoid_vla'), str(CORE / 'vla_sim_bridge'), str(CORE / 'tests'),
           str(CORE.parent / 'tests'), str(CORE.parent / 'benchmarks')]


@pytest.mark.linter
@pytest.mark.flake8
def test_flake8():
    rc, errors = main_with_errors(argv=CHECKED)
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    assert pep257_main(argv=CHECKED[:1]) == 0, 'Found docstring errors'
