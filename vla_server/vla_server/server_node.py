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

"""The VLA server node: serves ExecuteVLATask goals with a policy (full behaviour: issue 4)."""

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from vla_server.parameters import declare_parameters


class VLAServerNode(Node):
    """Declares the server's parameters; the action server is added on top of this."""

    def __init__(self) -> None:
        super().__init__('vla_server')
        self.params = declare_parameters(self)
        self.get_logger().info(
            f"vla_server ready (backend={self.params['policy_backend']}, "
            f"image_topic={self.params['image_topic']})")


def main(args=None) -> None:
    """Run the node until SIGINT, then exit 0."""
    rclpy.init(args=args)
    node = VLAServerNode()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
