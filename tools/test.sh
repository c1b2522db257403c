#!/usr/bin/env bash
# Run the whole test suite (every package, lint included) in the workspace environment.
# Extra arguments go to pytest, e.g. `tools/test.sh -m "not slow"` for the quick subset.
set -eo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A ROS graph of this run's own: localhost discovery and a domain chosen per run.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export MUJOCO_GL="${MUJOCO_GL:-egl}"
cd "$ROOT"
echo "tests on ROS_DOMAIN_ID=$ROS_DOMAIN_ID (localhost discovery only)"
exec "$ROOT/tools/run_in_env.sh" python -m pytest "$@"
