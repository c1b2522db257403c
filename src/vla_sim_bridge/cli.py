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

from humanoid_vla.process_diagnostics import enable_stack_dumps, leave_sigint_to_rclpy
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor


def main(args=None) -> None:
    """Pick a working offscreen GL backend, then run the bridge until SIGINT (exit 0)."""
    # MUJOCO_GL must be chosen before mujoco is first imported, so the node comes in late.
    from humanoid_vla.sim.gl import select_gl_backend
    if select_gl_backend() is None:
        raise SystemExit('no offscreen OpenGL backend works here: install the packages in '
                         'tools/sim_system_packages.txt (EGL or OSMesa)')
    from vla_sim_bridge.bridge_node import SimBridgeNode

    enable_stack_dumps()
    leave_sigint_to_rclpy()
    rclpy.init(args=args)
    node = executor = None
    try:  # Ctrl-C while the node is still starting must end it cleanly too
        node = SimBridgeNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # SIGINT shuts the context down; if spin() is building its wait set (on this thread)
        # just then, it raises RCLError ("context is not valid"), not ExternalShutdownException.
        if rclpy.ok():
            raise
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
