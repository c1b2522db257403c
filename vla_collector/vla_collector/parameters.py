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

"""
Every parameter of the demonstration recorder: name, default and what it means.

config/vla_collector.yaml mirrors this table (a test keeps them in sync).
"""

from humanoid_vla.parameter_table import ParameterSpec
from rcl_interfaces.msg import ParameterDescriptor

COLLECTOR_PARAMETERS = (
    ParameterSpec('data_dir', 'data/demos',
                  'Directory every output file must stay inside (created if missing).'),
    ParameterSpec('dataset_name', 'demos',
                  'Episodes go to <data_dir>/<dataset_name>.hdf5 (appended after a restart).'),
    ParameterSpec('camera_topics', ['/head_camera/image_raw'],
                  'Camera topics (sensor-data QoS); steps are sampled on the first one.'),
    ParameterSpec('camera_names', ['head'],
                  'One name per camera topic; stored as obs/<name>_rgb.'),
    ParameterSpec('compressed_images', False,
                  'Subscribe to sensor_msgs/CompressedImage instead of sensor_msgs/Image.'),
    ParameterSpec('joint_states_topic', '/joint_states', 'sensor_msgs/JointState to record.'),
    ParameterSpec('action_parts', ['right_hand_pose', 'right_gripper'],
                  'Action spec: parts of the recorded action vector, in order.'),
    ParameterSpec('left_hand_pose_topic', '/left_hand/target_pose',
                  'Commanded left-hand geometry_msgs/PoseStamped (if in the action spec).'),
    ParameterSpec('right_hand_pose_topic', '/right_hand/target_pose',
                  'Commanded right-hand geometry_msgs/PoseStamped (if in the action spec).'),
    ParameterSpec('left_gripper_topic', '/left_hand/gripper_command',
                  'Commanded left gripper std_msgs/Float64 (if in the action spec).'),
    ParameterSpec('right_gripper_topic', '/right_hand/gripper_command',
                  'Commanded right gripper std_msgs/Float64 (if in the action spec).'),
    ParameterSpec('base_velocity_topic', '/cmd_vel',
                  'Commanded base geometry_msgs/Twist (if in the action spec).'),
    ParameterSpec('sample_rate_hz', 10.0, 'Steps recorded per second, sampled on camera frames.'),
    ParameterSpec('max_input_age_s', 0.2,
                  'A step is dropped when any input (image, action, joints) is older than this.'),
    ParameterSpec('image_compression', 'lzf', 'HDF5 filter for images: lzf, gzip or none.'),
    ParameterSpec('write_queue_size', 64,
                  'Steps waiting for the disk at most; a step finding the queue full is dropped.'),
    ParameterSpec('record_action_goals', False,
                  'Record every ExecuteVLATask goal the server runs as an episode.'),
    ParameterSpec('action_name', 'execute_vla_task',
                  'Action whose goals are recorded when record_action_goals is true.'),
    ParameterSpec('instruction_topic', 'vla_server/active_instruction',
                  'Latched std_msgs/String with JSON {"goal_id", "instruction"} of each goal.'),
)


def declare_parameters(node, specs=COLLECTOR_PARAMETERS) -> dict:
    """Declare every parameter on the node and return their values by name."""
    return {s.name: node.declare_parameter(s.name, s.default, ParameterDescriptor(
        description=s.description)).value for s in specs}
