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

"""Conversions from the recorded ROS messages to the arrays stored in an episode."""

from geometry_msgs.msg import PoseStamped, Twist
from humanoid_vla.actions import Pose
from humanoid_vla.image_conversion import decode_compressed, image_to_rgb8, ImageConversionError
import numpy as np
from sensor_msgs.msg import CompressedImage, Image


def image_msg_to_rgb(msg) -> np.ndarray:
    """
    Return an Image or CompressedImage as an (H, W, 3) uint8 RGB array.

    Raises ImageConversionError for anything that cannot be read as the image it claims to be
    (unknown encoding, data not matching height x step, an undecodable payload).
    """
    if isinstance(msg, CompressedImage):
        if not len(msg.data):
            raise ImageConversionError('compressed image has no data')
        try:
            return decode_compressed(msg.data, msg.format)
        except ImageConversionError:
            raise
        except Exception as error:  # noqa: BLE001 - OpenCV raises its own error type
            raise ImageConversionError(
                f'cannot decode compressed image (format {msg.format!r}): {error}') from error
    if not isinstance(msg, Image):
        raise ImageConversionError(f'not an image message: {type(msg).__name__}')
    return image_to_rgb8(msg.data, msg.height, msg.width, msg.encoding, msg.step,
                         bool(msg.is_bigendian))


def pose_from_msg(msg: PoseStamped) -> Pose:
    """Return a stamped ROS pose as a core Pose (position, xyzw quaternion)."""
    p, q = msg.pose.position, msg.pose.orientation
    return Pose(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]))


def base_velocity_from_msg(msg: Twist) -> np.ndarray:
    """Return a base velocity command as (vx, vy, wz)."""
    return np.array([msg.linear.x, msg.linear.y, msg.angular.z])


def stamp_seconds(stamp) -> float:
    """Return a builtin_interfaces/Time as seconds."""
    return stamp.sec + stamp.nanosec * 1e-9
