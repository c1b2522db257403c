# Copyright 2026 The humanoid-vla Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Entry point of the vla_sim_bridge executable."""

from vla_ros_common.node_main import run_node


def main(args=None) -> None:
    """Pick a working offscreen GL backend, then run the bridge until SIGINT (exit 0)."""
    # MUJOCO_GL must be chosen before mujoco is first imported, so the node comes in late.
    from humanoid_vla.sim.gl import select_gl_backend
    if select_gl_backend() is None:
        raise SystemExit('no offscreen OpenGL backend works here: install the packages in '
                         'tools/sim_system_packages.txt (EGL or OSMesa)')
    from vla_sim_bridge.bridge_node import SimBridgeNode

    run_node(SimBridgeNode, 4, before_destroy=SimBridgeNode.shutdown, args=args)
