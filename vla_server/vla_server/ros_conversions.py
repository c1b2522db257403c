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

"""Conversions between ROS messages and the core library's arrays and actions."""

from geometry_msgs.msg import PoseStamped
from humanoid_vla.actions import Pose
from humanoid_vla.image_conversion import image_to_rgb8
import numpy as np
from sensor_msgs.msg import Image


def image_msg_to_rgb(msg: Image) -> np.ndarray:
    """Return a sensor_msgs/Image as an (H, W, 3) uint8 RGB array (ImageConversionError if bad)."""
    return image_to_rgb8(msg.data, msg.height, msg.width, msg.encoding, msg.step,
                         bool(msg.is_bigendian))


def pose_to_msg(pose: Pose, frame_id: str, stamp) -> PoseStamped:
    """Return a core Pose (position, xyzw quaternion) as a stamped ROS pose."""
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (
        float(v) for v in pose.position)
    (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
     msg.pose.orientation.w) = (float(v) for v in pose.orientation)
    return msg


def pose_from_msg(msg: PoseStamped) -> Pose:
    """Return a ROS pose as a core Pose."""
    p, q = msg.pose.position, msg.pose.orientation
    return Pose(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]))
