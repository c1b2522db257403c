"""
Pick an offscreen OpenGL backend for MuJoCo before mujoco is imported.

MuJoCo reads MUJOCO_GL once, when it is first imported, and a backend that cannot start only
fails at the first render. So each candidate is tried in a child process, and the first that
renders is put into the environment: EGL first (fast, works headless with Mesa's software
driver), OSMesa as the fallback.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from typing import Optional

CANDIDATES = ('egl', 'osmesa')

_PROBE = """
import mujoco
model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=".1"/></worldbody></mujoco>')
renderer = mujoco.Renderer(model, 16, 16)
renderer.update_scene(mujoco.MjData(model))
renderer.render()
renderer.close()
"""


@functools.lru_cache(maxsize=None)
def can_render(backend: str, timeout: float = 120.0) -> bool:
    """Return whether MuJoCo renders offscreen with this MUJOCO_GL value (child process)."""
    env = dict(os.environ, MUJOCO_GL=backend)
    env.pop('PYOPENGL_PLATFORM', None)
    try:
        completed = subprocess.run([sys.executable, '-c', _PROBE], env=env, timeout=timeout,
                                   capture_output=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


def select_gl_backend(candidates: tuple[str, ...] = CANDIDATES) -> Optional[str]:
    """
    Set MUJOCO_GL to the first backend that renders here and return it; None if none does.

    A MUJOCO_GL already set by the caller is tried first. Once mujoco is imported the choice
    is fixed, so then the current value is only checked.
    """
    current = os.environ.get('MUJOCO_GL')
    if 'mujoco' in sys.modules:
        return current if current and can_render(current) else None
    order = ([current] if current else []) + [c for c in candidates if c != current]
    for backend in order:
        if can_render(backend):
            os.environ['MUJOCO_GL'] = backend
            return backend
    return None
