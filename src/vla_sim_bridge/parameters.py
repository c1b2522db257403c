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
Every parameter of the simulation bridge: name, default and what it means.

config/sim.yaml mirrors this table (a test keeps them in sync).
"""

from humanoid_vla.parameter_table import ParameterSpec
from rcl_interfaces.msg import ParameterDescriptor

SIM_PARAMETERS = (
    ParameterSpec('camera_topic', '/head_camera/image_raw',
                  'Head camera sensor_msgs/Image (rgb8), published with sensor-data QoS.'),
    ParameterSpec('camera_rate_hz', 10.0, 'Camera frames per simulated second.'),
    ParameterSpec('image_size', 224, 'Width and height of the rendered camera image (pixels).'),
    ParameterSpec('joint_states_topic', '/joint_states', 'sensor_msgs/JointState output.'),
    ParameterSpec('joint_states_rate_hz', 50.0, 'Joint state messages per simulated second.'),
    ParameterSpec('right_hand_pose_topic', '/right_hand/target_pose',
                  'Target pose input of the right hand (geometry_msgs/PoseStamped).'),
    ParameterSpec('right_gripper_topic', '/right_hand/gripper_command',
                  'Gripper command input of the right hand (std_msgs/Float64, 0..1).'),
    ParameterSpec('right_hand_state_topic', '/right_hand/current_pose',
                  'Measured right-hand pose output (geometry_msgs/PoseStamped).'),
    ParameterSpec('frame_id', 'base_link',
                  'Frame of poses in and out: the G1 pelvis (the robot stands welded to it).'),
    ParameterSpec('step_seconds', 0.02, 'Simulated seconds advanced per loop iteration.'),
    ParameterSpec('real_time_factor', 1.0,
                  'Simulated seconds per wall second; 0 runs as fast as the CPU allows.'),
    ParameterSpec('publish_clock', True, 'Publish /clock for nodes with use_sim_time.'),
    ParameterSpec('seed', 0, 'Seed of the task set up at start.'),
    ParameterSpec('task', '', 'Task family set up at start (touch, pick_place; empty: by seed).'),
    ParameterSpec('split', 'train', 'Objects and phrasings to draw from: train or novel.'),
    ParameterSpec('expert_rate_hz', 10.0,
                  'Commands per simulated second of the scripted expert (~/run_expert).'),
    ParameterSpec('expert_max_steps', 80, 'The scripted expert gives up after this many steps.'),
)


def declare_parameters(node, specs=SIM_PARAMETERS) -> dict:
    """Declare every parameter on the node and return their values by name."""
    return {s.name: node.declare_parameter(s.name, s.default, ParameterDescriptor(
        description=s.description)).value for s in specs}
