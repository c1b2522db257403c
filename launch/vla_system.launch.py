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
Bring up the VLA server and the demonstration recorder (and the MuJoCo simulation on request).

    ros2 launch launch/vla_system.launch.py image_topic:=/camera/color/image_raw \\
        checkpoint:=checkpoints/default

Every setting is a launch argument; parameters come from config/. Camera, pose and gripper topics
are remapped from the nodes' defaults, so a Gazebo bridge's (or a robot driver's) topics plug in
without code changes.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node, PushRosNamespace

WORKSPACE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(WORKSPACE, 'config')
# The success check the simulation bridge offers (see config/sim.yaml).
SIM_SUCCESS_SERVICE = '/vla_sim/task_success'

ARGUMENTS = [
    ('namespace', '', 'Namespace of every node (and of relative topic names).'),
    ('server_params_file', os.path.join(CONFIG, 'vla_server.yaml'),
     'Parameter file of the VLA server.'),
    ('collector_params_file', os.path.join(CONFIG, 'vla_collector.yaml'),
     'Parameter file of the demonstration recorder.'),
    ('use_sim', 'false', 'Also start the MuJoCo simulation (launch/sim.launch.py).'),
    ('use_sim_time', LaunchConfiguration('use_sim'),
     'Use /clock from the simulation (defaults to use_sim).'),
    ('log_level', 'info', 'Log level of every node.'),
    ('image_topic', '/head_camera/image_raw', 'Camera image topic (sensor_msgs/Image).'),
    ('joint_states_topic', '/joint_states', 'Joint state topic (sensor_msgs/JointState).'),
    ('right_hand_pose_topic', '/right_hand/target_pose',
     'Target pose topic of the right hand (geometry_msgs/PoseStamped).'),
    ('right_gripper_topic', '/right_hand/gripper_command',
     'Gripper command topic of the right hand (std_msgs/Float64, 0 open .. 1 closed).'),
    ('left_hand_pose_topic', '/left_hand/target_pose',
     'Target pose topic of the left hand (geometry_msgs/PoseStamped).'),
    ('left_gripper_topic', '/left_hand/gripper_command',
     'Gripper command topic of the left hand (std_msgs/Float64).'),
    ('policy_backend', 'custom', 'Policy backend: custom, openvla or scripted.'),
    ('checkpoint', os.path.join(WORKSPACE, 'checkpoints', 'default'),
     'Checkpoint directory (custom) or model id / directory (openvla).'),
    ('dry_run', 'false', 'Compute and report actions but publish no command.'),
    ('record', 'true', 'Start the demonstration recorder.'),
    ('success_service', '',
     'std_srvs/Trigger success check the server polls; with use_sim, the simulation\'s.'),
]


def _remappings() -> list:
    """Map the nodes' default topic names onto the launch arguments."""
    return [
        ('/head_camera/image_raw', LaunchConfiguration('image_topic')),
        ('/joint_states', LaunchConfiguration('joint_states_topic')),
        ('/right_hand/target_pose', LaunchConfiguration('right_hand_pose_topic')),
        ('/right_hand/gripper_command', LaunchConfiguration('right_gripper_topic')),
        ('/left_hand/target_pose', LaunchConfiguration('left_hand_pose_topic')),
        ('/left_hand/gripper_command', LaunchConfiguration('left_gripper_topic')),
    ]


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the nodes."""
    log_level = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]
    server = Node(
        package='vla_server', executable='vla_server', name='vla_server', output='screen',
        parameters=[LaunchConfiguration('server_params_file'), {
            'use_sim_time': LaunchConfiguration('use_sim_time'),
            'policy_backend': LaunchConfiguration('policy_backend'),
            'policy_checkpoint': LaunchConfiguration('checkpoint'),
            'dry_run': LaunchConfiguration('dry_run'),
            'success_service': PythonExpression([
                "'", SIM_SUCCESS_SERVICE, "' if '", LaunchConfiguration('use_sim'),
                "'.lower() == 'true' else '", LaunchConfiguration('success_service'), "'"]),
        }],
        remappings=_remappings(), arguments=log_level)
    collector = Node(
        package='vla_collector', executable='vla_collector', name='vla_collector',
        output='screen', condition=IfCondition(LaunchConfiguration('record')),
        parameters=[LaunchConfiguration('collector_params_file'),
                    {'use_sim_time': LaunchConfiguration('use_sim_time')}],
        remappings=_remappings(), arguments=log_level)
    simulation = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(os.path.dirname(__file__), 'sim.launch.py')),
        condition=IfCondition(LaunchConfiguration('use_sim')),
        launch_arguments={'log_level': LaunchConfiguration('log_level'),
                          'image_topic': LaunchConfiguration('image_topic'),
                          'joint_states_topic': LaunchConfiguration('joint_states_topic'),
                          'right_hand_pose_topic': LaunchConfiguration('right_hand_pose_topic'),
                          'right_gripper_topic': LaunchConfiguration('right_gripper_topic'),
                          }.items())
    nodes = GroupAction([PushRosNamespace(LaunchConfiguration('namespace')),
                         simulation, server, collector])
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS] + [nodes])
