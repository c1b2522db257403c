"""
Compose the tabletop scene as a MuJoCo MjSpec: the G1, a table, a head camera, object slots.

The scene is compiled once. Every object a task may need has a pre-allocated slot body (a free
body per shape, `Shape.slots` of each); a reset colours the slots it uses and parks the rest
out of sight, so resets never recompile the model or rebuild the renderer.

Changes to the Menagerie G1 and why:
- the pelvis free joint is removed, so the robot stands fixed (`base_link` = pelvis frame,
  0.793 m above the floor) and no balance controller is needed;
- gravity compensation on every robot body, so the position actuators track their targets
  without a gravity sag (a real G1 arm controller compensates gravity as well);
- robot collision geoms touch only the table and the objects (contype 2, conaffinity 0), not
  each other or the floor, which keeps contacts few and the physics fast;
- a grasp site per hand (`<side>_hand_grasp`, between palm, fingers and thumb): the point a
  hand pose refers to;
- a `head` camera on the torso looking down at the table, shadows and multisampling off
  (software rendering is ten times slower with shadows).
"""

from __future__ import annotations

from typing import Iterator

from humanoid_vla.sim.assets import g1_with_hands_path
from humanoid_vla.sim.catalog import SHAPES
import mujoco
import numpy as np

SIDES = ('right', 'left')
BASE_BODY = 'pelvis'
PELVIS_HEIGHT = 0.793
TIMESTEP = 0.002

HAND_BODY = {side: f'{side}_wrist_yaw_link' for side in SIDES}
GRASP_SITE = {side: f'{side}_hand_grasp' for side in SIDES}
# In the wrist yaw link frame: fingers point along +x, the palm faces +y (right hand) or -y
# (left hand); the grasp point is 14 cm out along the fingers and 4.5 cm off the palm.
GRASP_SITE_POS = {'right': (0.14, 0.045, 0.0), 'left': (0.14, -0.045, 0.0)}
WAIST_JOINTS = ('waist_yaw_joint', 'waist_roll_joint', 'waist_pitch_joint')
_ARM = ('shoulder_pitch', 'shoulder_roll', 'shoulder_yaw', 'elbow', 'wrist_roll', 'wrist_pitch',
        'wrist_yaw')
_FINGERS = ('thumb_0', 'thumb_1', 'thumb_2', 'index_0', 'index_1', 'middle_0', 'middle_1')
# The grasp orientation of the right hand (xyzw, base_link): palm down, fingers forward and 30
# degrees down, thumb back. The scripted expert uses it; the IK reaches it over the whole table.
GRASP_QUAT_XYZW = (-0.683013, 0.183013, 0.183013, 0.683013)
# Start posture: the waist leant 0.2 rad forward and held there (the IK moves arms only; with
# this lean the right hand reaches the whole spawn area), the right hand 14 cm above the near
# edge of the table in the grasp orientation (an IK solution for grasp site (0.22, -0.22, 0.05)
# in base_link), the left arm hanging as in the Menagerie "stand" keyframe. Every other joint
# starts at zero.
HOME_POSTURE = {
    'waist_pitch_joint': 0.2,
    'right_shoulder_pitch_joint': 0.527, 'right_shoulder_roll_joint': -1.131,
    'right_shoulder_yaw_joint': 0.263, 'right_elbow_joint': -0.871,
    'right_wrist_roll_joint': -0.686, 'right_wrist_pitch_joint': 0.725,
    'right_wrist_yaw_joint': 0.087,
    'left_shoulder_pitch_joint': 0.2, 'left_shoulder_roll_joint': 0.2, 'left_elbow_joint': 1.28,
}

# Table: a box whose top is 9.3 cm below the pelvis, in front of the robot.
TABLE_TOP_Z = PELVIS_HEIGHT - 0.093  # world frame (m)
TABLE_CENTRE = (0.36, -0.10)  # base frame x, y (m)
TABLE_HALF = (0.18, 0.36, 0.02)
TABLE_RGBA = (0.42, 0.32, 0.24, 1.0)
# Light intensities (grey): ambient and camera-borne headlight light every face, the overhead
# and table lights the upward ones.
LIGHT_AMBIENT = 0.3
LIGHT_HEADLIGHT = 0.3
LIGHT_OVERHEAD = 0.35
LIGHT_TABLE = 0.1
LIGHT_SPECULAR = 0.05

HEAD_CAMERA = 'head'
HEAD_CAMERA_POS = (0.09, 0.0, 0.42)  # in torso_link
HEAD_CAMERA_PITCH = np.deg2rad(52.0)  # below the horizon (the waist leans 11.5 more)
HEAD_CAMERA_FOVY = 70.0

# Where unused object slots wait: behind the robot, floating, without contacts.
PARK_ORIGIN = (-1.5, -1.0, 0.5)

ROBOT_CONTYPE, ROBOT_CONAFFINITY = 2, 0
OBJECT_CONTYPE, OBJECT_CONAFFINITY = 1, 3  # touches the robot, the table and other objects
OBJECT_DENSITY = 400.0


def arm_joints(side: str) -> tuple[str, ...]:
    """Return the seven arm joint names of one side, shoulder to wrist."""
    return tuple(f'{side}_{name}_joint' for name in _ARM)


def finger_joints(side: str) -> tuple[str, ...]:
    """Return the seven Dex3 finger joint names of one side."""
    return tuple(f'{side}_hand_{name}_joint' for name in _FINGERS)


def slot_names() -> Iterator[tuple[str, str]]:
    """Yield (slot body name, shape name) for every object slot of the scene."""
    for shape in SHAPES.values():
        for index in range(shape.slots):
            yield f'slot_{shape.name}_{index}', shape.name


def weld_name(side: str, slot: str) -> str:
    """Return the name of the grasp-assist weld between one hand and one slot."""
    return f'grasp_{side}_{slot}'


def _camera_quat(pitch: float) -> np.ndarray:
    """Return the wxyz orientation of a camera looking forward (+x) and `pitch` rad down."""
    x_axis = np.array([0.0, -1.0, 0.0])  # image right = robot's right
    y_axis = np.array([np.sin(pitch), 0.0, np.cos(pitch)])  # image up
    z_axis = np.cross(x_axis, y_axis)  # the camera looks along -z
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([x_axis, y_axis, z_axis]).ravel())
    return quat


def robot_spec() -> mujoco.MjSpec:
    """Return the G1 with Dex3 hands, pelvis fixed, gravity compensated, grasp sites added."""
    spec = mujoco.MjSpec.from_file(str(g1_with_hands_path()))
    spec.delete(spec.joint('floating_base_joint'))
    for key in list(spec.keys):  # the keyframes assume the free joint
        spec.delete(key)
    for body in spec.bodies:
        if body.name and body.name != 'world':
            body.gravcomp = 1.0
    for geom in spec.geoms:
        if geom.contype or geom.conaffinity:
            geom.contype, geom.conaffinity = ROBOT_CONTYPE, ROBOT_CONAFFINITY
    for side in SIDES:
        spec.body(HAND_BODY[side]).add_site(
            name=GRASP_SITE[side], pos=list(GRASP_SITE_POS[side]), size=[0.008],
            rgba=[1.0, 1.0, 1.0, 0.0], group=5)
    return spec


def _add_table(spec: mujoco.MjSpec) -> None:
    """Add the table: a box top on four legs, static, in front of the robot."""
    cx, cy = TABLE_CENTRE
    hx, hy, hz = TABLE_HALF
    table = spec.worldbody.add_body(name='table', pos=[cx, cy, TABLE_TOP_Z - hz])
    table.add_geom(name='table_top', type=mujoco.mjtGeom.mjGEOM_BOX, size=[hx, hy, hz],
                   rgba=list(TABLE_RGBA), contype=OBJECT_CONTYPE,
                   conaffinity=OBJECT_CONAFFINITY)
    leg = (TABLE_TOP_Z - 2 * hz) / 2
    for sx in (-1, 1):
        for sy in (-1, 1):
            table.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.02, 0.02, leg],
                           pos=[sx * (hx - 0.03), sy * (hy - 0.03), -hz - leg],
                           rgba=list(TABLE_RGBA), contype=0, conaffinity=0)


def _add_slot(spec: mujoco.MjSpec, slot: str, shape_name: str, index: int) -> None:
    """Add one parked object slot: a free body with one collision geom (and a rim for vessels)."""
    shape = SHAPES[shape_name]
    px, py, pz = PARK_ORIGIN
    body = spec.worldbody.add_body(name=slot, pos=[px, py + 0.3 * index, pz])
    body.add_freejoint(name=f'{slot}_joint')
    geom_type = (mujoco.mjtGeom.mjGEOM_BOX if shape.geom == 'box'
                 else mujoco.mjtGeom.mjGEOM_CYLINDER)
    body.add_geom(name=f'{slot}_geom', type=geom_type, size=list(shape.size) + [0.0] * (
        3 - len(shape.size)), rgba=[0.5, 0.5, 0.5, 1.0], density=OBJECT_DENSITY,
        contype=OBJECT_CONTYPE, conaffinity=OBJECT_CONAFFINITY, friction=[1.0, 0.01, 0.001])
    if shape_name in ('cup', 'bowl'):
        # A darker disc on top reads as the opening of a vessel in the camera image.
        radius, half = shape.size
        body.add_geom(name=f'{slot}_rim', type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                      size=[0.8 * radius, 0.001, 0.0], pos=[0.0, 0.0, half],
                      rgba=[0.3, 0.3, 0.3, 1.0], contype=0, conaffinity=0, density=0.0)


def _add_camera_and_lights(spec: mujoco.MjSpec) -> None:
    """Add the head camera on the torso and soft shadowless lighting."""
    spec.body('torso_link').add_camera(
        name=HEAD_CAMERA, pos=list(HEAD_CAMERA_POS), quat=list(_camera_quat(HEAD_CAMERA_PITCH)),
        fovy=HEAD_CAMERA_FOVY)
    # The lights add up to about 1 on an upward face: brighter, and the tops of orange
    # and yellow objects both rendered as (255, 255, ~50), one colour to the camera.
    for light in spec.lights:  # the robot file's overhead light
        light.castshadow = False
        light.diffuse = [LIGHT_OVERHEAD] * 3
        light.specular = [LIGHT_SPECULAR] * 3
    spec.worldbody.add_light(name='table_light', pos=[0.4, -0.1, 2.2], dir=[0.0, 0.0, -1.0],
                             diffuse=[LIGHT_TABLE] * 3, specular=[LIGHT_SPECULAR] * 3,
                             castshadow=False)
    spec.visual.headlight.ambient = [LIGHT_AMBIENT] * 3
    spec.visual.headlight.diffuse = [LIGHT_HEADLIGHT] * 3
    spec.visual.headlight.specular = [LIGHT_SPECULAR] * 3
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0


def scene_spec(timestep: float = TIMESTEP) -> mujoco.MjSpec:
    """Return the whole tabletop scene as an MjSpec (compile it with .compile())."""
    spec = robot_spec()
    spec.modelname = 'g1_tabletop'
    spec.option.timestep = timestep
    spec.worldbody.add_geom(name='floor', type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05],
                            rgba=[0.55, 0.57, 0.6, 1.0], contype=1, conaffinity=1)
    _add_table(spec)
    for index, (slot, shape_name) in enumerate(slot_names()):
        _add_slot(spec, slot, shape_name, index)
    for side in SIDES:
        for slot, _ in slot_names():
            spec.add_equality(name=weld_name(side, slot), type=mujoco.mjtEq.mjEQ_WELD,
                              objtype=mujoco.mjtObj.mjOBJ_BODY, name1=HAND_BODY[side],
                              name2=slot, active=False)
    _add_camera_and_lights(spec)
    return spec
