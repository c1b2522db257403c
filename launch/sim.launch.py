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
Bring up the MuJoCo simulation bridge alone (node vla_sim, parameters from config/sim.yaml).

    ros2 launch launch/sim.launch.py seed:=3 task:=pick_place

It offers the topics a robot (or a Gazebo bridge) would: the head camera, joint states and the
measured hand pose out; target hand poses and gripper commands in; /clock for use_sim_time.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'config')

ARGUMENTS = [
    ('params_file', os.path.join(CONFIG, 'sim.yaml'), 'Parameter file of the bridge.'),
    ('log_level', 'info', 'Log level of the bridge.'),
    ('seed', '0', 'Seed of the task set up at start.'),
    ('task', '', 'Task family set up at start: touch, pick_place (empty: from the seed).'),
    ('image_topic', '/head_camera/image_raw', 'Camera image topic the bridge publishes.'),
    ('joint_states_topic', '/joint_states', 'Joint state topic the bridge publishes.'),
    ('right_hand_pose_topic', '/right_hand/target_pose',
     'Target pose topic of the right hand the bridge follows.'),
    ('right_gripper_topic', '/right_hand/gripper_command',
     'Gripper command topic of the right hand the bridge follows.'),
]


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the bridge node."""
    bridge = Node(
        executable='vla_sim_bridge', name='vla_sim', output='screen',
        parameters=[LaunchConfiguration('params_file'), {
            'seed': LaunchConfiguration('seed'),
            'task': LaunchConfiguration('task'),
            'camera_topic': LaunchConfiguration('image_topic'),
            'joint_states_topic': LaunchConfiguration('joint_states_topic'),
            'right_hand_pose_topic': LaunchConfiguration('right_hand_pose_topic'),
            'right_gripper_topic': LaunchConfiguration('right_gripper_topic'),
        }],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')])
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS] + [bridge])
