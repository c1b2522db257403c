"""Docstring check of this package with ament_pep257."""

import pathlib

from ament_pep257.main import main
import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = main(argv=[str(PACKAGE), str(PACKAGE / 'test')])
    assert rc == 0, 'Found code style errors / warnings'
