"""Point the ROS wheels' exported CMake targets at this machine's Python and NumPy headers.

The message wheels were built in a manylinux container, and their exported targets name include
directories from that container (``/opt/python/cp311-cp311/...``). CMake refuses imported
targets with non-existent include paths, so building any rosidl interface package fails until the
paths are rewritten. Rewriting is idempotent: a second run finds nothing to change.
"""

import pathlib
import sys
import sysconfig

import numpy

BUILD_MACHINE_PYTHON_INCLUDE = "/opt/python/cp311-cp311/include/python3.11"
BUILD_MACHINE_NUMPY_INCLUDE = (
    "/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"
)


def rewrite(prefix: pathlib.Path) -> int:
    """Rewrite every exported CMake file under ``prefix/share``; return how many changed."""
    replacements = {
        BUILD_MACHINE_NUMPY_INCLUDE: numpy.get_include(),
        BUILD_MACHINE_PYTHON_INCLUDE: sysconfig.get_paths()["include"],
    }
    changed = 0
    for cmake_file in sorted(prefix.glob("share/*/cmake/*.cmake")):
        text = cmake_file.read_text()
        new_text = text
        for old, new in replacements.items():
            new_text = new_text.replace(old, new)
        if new_text != text:
            cmake_file.write_text(new_text)
            changed += 1
    return changed


def main() -> int:
    """Rewrite the venv given as the only argument (default: this interpreter's prefix)."""
    prefix = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    changed = rewrite(prefix)
    print(f"    {changed} CMake export file(s) rewritten" if changed else "    nothing to rewrite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
