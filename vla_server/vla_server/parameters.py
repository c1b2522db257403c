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
Every parameter of the VLA server: name, default and what it means.

config/vla_server.yaml mirrors this table (a test keeps them in sync); the node declares each
entry with its description so `ros2 param describe` explains it on the robot.
"""

from humanoid_vla.control.controller import DEFAULT_REPLAN_STEPS
from humanoid_vla.parameter_table import ParameterSpec
from rcl_interfaces.msg import ParameterDescriptor

SERVER_PARAMETERS = (
    ParameterSpec('action_name', 'execute_vla_task', 'Name of the ExecuteVLATask action server.'),
    ParameterSpec('image_topic', '/head_camera/image_raw',
                  'sensor_msgs/Image input, subscribed with sensor-data QoS.'),
    ParameterSpec('joint_states_topic', '/joint_states',
                  'sensor_msgs/JointState used as proprioception; empty = not subscribed.'),
    ParameterSpec('left_hand_state_topic', '',
                  'geometry_msgs/PoseStamped: where the left hand is (measured, in frame_id); '
                  "a goal's first command is step-limited from it, not from the last command; "
                  'empty = not subscribed.'),
    ParameterSpec('right_hand_state_topic', '/right_hand/current_pose',
                  'geometry_msgs/PoseStamped: where the right hand is (measured, in frame_id); '
                  "a goal's first command is step-limited from it, not from the last command; "
                  'empty = not subscribed.'),
    ParameterSpec('left_hand_pose_topic', '/left_hand/target_pose',
                  'geometry_msgs/PoseStamped output for the left hand (if in the action spec).'),
    ParameterSpec('right_hand_pose_topic', '/right_hand/target_pose',
                  'geometry_msgs/PoseStamped output for the right hand (if in the action spec).'),
    ParameterSpec('left_gripper_topic', '/left_hand/gripper_command',
                  'std_msgs/Float64 output in [0 open, 1 closed] for the left gripper.'),
    ParameterSpec('right_gripper_topic', '/right_hand/gripper_command',
                  'std_msgs/Float64 output in [0 open, 1 closed] for the right gripper.'),
    ParameterSpec('base_velocity_topic', '/cmd_vel',
                  'geometry_msgs/Twist output for the base (if in the action spec).'),
    ParameterSpec('frame_id', 'base_link', 'frame_id stamped on the published target poses.'),
    ParameterSpec('action_parts', ['right_hand_pose', 'right_gripper'],
                  'Action spec of this robot: parts of the action vector, in order.'),
    ParameterSpec('control_rate_hz', 10.0, 'Control loop rate while a goal runs.'),
    ParameterSpec('camera_timeout_s', 0.5,
                  'CAMERA_TIMEOUT when the newest image is older than this; '
                  'a new goal first waits this long.'),
    ParameterSpec('default_max_steps', 200, 'Steps used when a goal asks for max_steps = 0.'),
    ParameterSpec('max_steps_limit', 2000, 'Goals asking for more steps are rejected.'),
    ParameterSpec('max_instruction_length', 256,
                  'Goals with longer instructions (characters) are rejected.'),
    ParameterSpec('preempt_running_goal', True,
                  'A new goal preempts the running one (true) or is rejected (false).'),
    ParameterSpec('policy_backend', 'custom',
                  'Policy backend name: custom, openvla or scripted (tests, dry runs).'),
    ParameterSpec('policy_checkpoint', '',
                  'Checkpoint directory (custom) or model id / directory (openvla).'),
    ParameterSpec('policy_device', 'cpu', 'Torch device for the policy: cpu, cuda, cuda:1, ...'),
    ParameterSpec('policy_options', '{}',
                  'JSON object of backend-specific options, e.g. {"load_in_4bit": true}.'),
    ParameterSpec('replan_steps', DEFAULT_REPLAN_STEPS,
                  'Ticks executed from one action chunk before the policy is queried again '
                  '(policies with 1-action chunks are asked every tick).'),
    ParameterSpec('temporal_ensembling', False,
                  'Blend overlapping action chunks (ACT-style) instead of replanning.'),
    ParameterSpec('workspace_min', [0.05, -0.5, -0.25],
                  'Lower corner [x, y, z] (m, in frame_id) of the box target positions stay in '
                  '(default: the G1 right hand around its table, pelvis frame).'),
    ParameterSpec('workspace_max', [0.6, 0.3, 0.35],
                  'Upper corner [x, y, z] (m, in frame_id) of the box target positions stay in.'),
    ParameterSpec('max_position_step', 0.05, 'Largest change of a target position per tick (m).'),
    ParameterSpec('max_rotation_step', 0.3,
                  'Largest change of a target orientation per tick (rad).'),
    ParameterSpec('success_service', '',
                  'std_srvs/Trigger service that reports task success; empty = none.'),
    ParameterSpec('success_check_period', 5, 'Call the success service every N ticks.'),
    ParameterSpec('dry_run', False, 'Compute and report actions but publish no command.'),
)


def declare_parameters(node, specs=SERVER_PARAMETERS) -> dict:
    """Declare every parameter on the node and return their values by name."""
    return {s.name: node.declare_parameter(s.name, s.default, ParameterDescriptor(
        description=s.description)).value for s in specs}
