#!/usr/bin/env bash
# Run a command with the workspace environment: the venv (when there is one) and the colcon
# overlay. On a machine with a system ROS 2, source /opt/ros/<distro>/setup.bash first.
set -eo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLA_VENV:-$ROOT/.venv}"
if [ -x "$VENV/bin/python" ]; then
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
fi
if [ -f "$ROOT/install/setup.bash" ]; then
  # shellcheck disable=SC1091
  source "$ROOT/install/setup.bash"
fi
exec "$@"
