"""
The tabletop world at run time: reset objects from a seed, step physics, render, read poses.

One compiled model serves every episode (see `scene`): a reset moves the slots the task needs
onto the table at seeded, non-overlapping positions, colours them, and parks the others. Poses
come back in `base_link` (the pelvis frame) with xyzw quaternions.
"""

from __future__ import annotations

from typing import Mapping, Optional, Protocol

from humanoid_vla.camera_projection import PinholeCamera
from humanoid_vla.sim import scene
from humanoid_vla.sim.catalog import COLOURS, Shape, SHAPES, split_name
from humanoid_vla.sim.frames import (from_frame, to_frame, wxyz_to_mat, wxyz_to_xyzw,
                                     xyzw_to_wxyz)
from humanoid_vla.sim.layout import sample_layout, SceneLayoutError
import mujoco
import numpy as np

SETTLE_SECONDS = 0.2
# vla-sim-record and vla-sim-evaluate wait this long after a reset (their --settle default)
# before the first frame; the in-process tools let the scene rest as long.
RECORDING_SETTLE_SECONDS = 0.5


class SceneRequest(Protocol):
    """What a reset needs from a task: the objects, and which two must be kept apart."""

    objects: tuple[str, ...]
    target: str
    reference: Optional[str]


class TabletopWorld:
    """The G1 at its table with coloured objects; see the module and `scene` docstrings."""

    def __init__(self, timestep: float = scene.TIMESTEP) -> None:
        """Compile the scene once; the renderer is made on the first render."""
        self.model = scene.scene_spec(timestep).compile()
        self.data = mujoco.MjData(self.model)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        model = self.model
        self._robot_joints = [j for j in range(model.njnt)
                              if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
        self._robot_qpos = np.array([model.jnt_qposadr[j] for j in self._robot_joints])
        self._joint_names = tuple(model.joint(j).name for j in self._robot_joints)
        base = model.body(scene.BASE_BODY).id
        mujoco.mj_kinematics(model, self.data)
        # The pelvis is welded to the world, so base_link never moves: cache its pose.
        self._base_pos = self.data.xpos[base].copy()
        self._base_rot = self.data.xmat[base].reshape(3, 3).copy()
        self._slots = dict(scene.slot_names())
        self._slot_geoms = {slot: model.geom(f'{slot}_geom').id for slot in self._slots}
        self._slot_rims = {slot: model.geom(f'{slot}_rim').id for slot in self._slots
                           if self._slots[slot] in ('cup', 'bowl')}
        self._slot_qpos = {slot: model.jnt_qposadr[model.joint(f'{slot}_joint').id]
                           for slot in self._slots}
        self._slot_dof = {slot: model.jnt_dofadr[model.joint(f'{slot}_joint').id]
                          for slot in self._slots}
        self._slot_home = {slot: model.body(slot).pos.copy() for slot in self._slots}
        self._welds = {(side, slot): model.equality(scene.weld_name(side, slot)).id
                       for side in scene.SIDES for slot in self._slots}
        self._hand_geoms = {side: self.hand_geoms(side) for side in scene.SIDES}
        self.objects: dict[str, str] = {}  # object name -> slot body name
        self.rng = np.random.default_rng(0)
        self.reset(0, None)

    # Episode control -------------------------------------------------------------------------

    def reset(self, seed: int, task: Optional[SceneRequest] = None) -> None:
        """Start an episode: home posture, the task's objects spawned from the seed, settled."""
        model, data = self.model, self.data
        mujoco.mj_resetData(model, data)
        self.rng = np.random.default_rng(seed)
        data.eq_active[:] = 0
        for name, value in scene.HOME_POSTURE.items():
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = value
        self.set_joint_targets(scene.HOME_POSTURE)
        for slot in self._slots:
            self._park(slot)
        self.objects = {}
        mujoco.mj_forward(model, data)
        if task is not None:
            self._spawn(task)
        self.step(int(round(SETTLE_SECONDS / model.opt.timestep)))

    def step(self, n: int = 1) -> None:
        """Advance the physics by n timesteps."""
        for _ in range(n):
            mujoco.mj_step(self.model, self.data)

    def settle(self, seconds: float = RECORDING_SETTLE_SECONDS) -> None:
        """Let a freshly reset scene rest as the recorder's wait after a reset does."""
        self.step(max(1, int(round(seconds / self.timestep))))

    @property
    def timestep(self) -> float:
        """Return the physics timestep in seconds."""
        return float(self.model.opt.timestep)

    @property
    def time(self) -> float:
        """Return the simulated time since the reset in seconds."""
        return float(self.data.time)

    # Robot -----------------------------------------------------------------------------------

    def joint_names(self) -> tuple[str, ...]:
        """Return the robot's 43 joint names (legs, waist, arms, fingers), model order."""
        return self._joint_names

    def joint_positions(self) -> np.ndarray:
        """Return the robot joint angles (rad) in joint_names() order."""
        return self.data.qpos[self._robot_qpos].copy()

    def set_joint_targets(self, targets: Mapping[str, float]) -> None:
        """Set position actuator targets (rad) by joint name (actuators share joint names)."""
        for name, value in targets.items():
            self.data.ctrl[self.model.actuator(name).id] = value

    def base_pose_world(self) -> tuple[np.ndarray, np.ndarray]:
        """Return base_link (pelvis) position and 3x3 rotation in the world."""
        return self._base_pos.copy(), self._base_rot.copy()

    def to_base(self, pos: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Express a world pose (pos, 3x3 rot) in base_link."""
        return to_frame(*self.base_pose_world(), np.asarray(pos), np.asarray(rot))

    def to_world(self, pos: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Express a base_link pose (pos, 3x3 rot) in the world."""
        return from_frame(*self.base_pose_world(), np.asarray(pos), np.asarray(rot))

    def camera_in_base(self, camera: str = scene.HEAD_CAMERA) -> PinholeCamera:
        """
        Return a camera's pose in base_link and its field of view, as it is now.

        The head camera rides on the torso, whose posture the IK holds: this is the calibration
        that maps base-frame points (subgoals, objects) to image positions.
        """
        cam = self.data.cam(camera)
        pos, rot = self.to_base(cam.xpos, cam.xmat.reshape(3, 3))
        return PinholeCamera(pos, rot, float(self.model.cam(camera).fovy[0]))

    def hand_pose(self, side: str = 'right') -> tuple[np.ndarray, np.ndarray]:
        """Return the grasp site pose of one hand in base_link: (pos (3), quat xyzw (4))."""
        site = self.data.site(scene.GRASP_SITE[side])
        pos, rot = self.to_base(site.xpos, site.xmat.reshape(3, 3))
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rot.ravel())
        return pos, wxyz_to_xyzw(quat)

    def hand_geoms(self, side: str = 'right') -> list[int]:
        """Return the collision geom ids of one hand (wrist yaw link and fingers)."""
        model = self.model
        root = model.body(scene.HAND_BODY[side]).id
        bodies = {b for b in range(model.nbody) if self._descends(b, root)}
        return [g for g in range(model.ngeom)
                if model.geom_bodyid[g] in bodies and model.geom_contype[g]]

    def _descends(self, body: int, root: int) -> bool:
        """Return whether body is root or inside its subtree."""
        while body != root and body != 0:
            body = int(self.model.body_parentid[body])
        return body == root

    # Objects ---------------------------------------------------------------------------------

    def object_names(self) -> tuple[str, ...]:
        """Return the names of the objects on the table, e.g. ('red_cup', 'blue_plate')."""
        return tuple(self.objects)

    def object_shape(self, name: str) -> Shape:
        """Return the catalogue shape of an object on the table."""
        return SHAPES[self._slots[self.objects[name]]]

    def object_slot(self, name: str) -> str:
        """Return the slot body name that holds an object."""
        return self.objects[name]

    def object_geom(self, name: str) -> int:
        """Return the collision geom id of an object."""
        return self._slot_geoms[self.objects[name]]

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return an object's centre pose in base_link: (pos (3), quat xyzw (4))."""
        body = self.data.body(self.objects[name])
        pos, rot = self.to_base(body.xpos, body.xmat.reshape(3, 3))
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rot.ravel())
        return pos, wxyz_to_xyzw(quat)

    def object_speed(self, name: str) -> float:
        """Return an object's linear speed (m/s)."""
        dof = self._slot_dof[self.objects[name]]
        return float(np.linalg.norm(self.data.qvel[dof:dof + 3]))

    def table_top_z(self) -> float:
        """Return the height of the table top in base_link (m)."""
        return scene.TABLE_TOP_Z - scene.PELVIS_HEIGHT

    def place_object(self, name: str, x: float, y: float, z: Optional[float] = None) -> None:
        """Put an object at rest at base-frame (x, y), on the table unless z is given."""
        shape = self.object_shape(name)
        if z is None:
            z = self.table_top_z() + shape.height / 2
        pos, _ = self.to_world(np.array([x, y, z]), np.eye(3))
        slot = self.objects[name]
        adr = self._slot_qpos[slot]
        self.data.qpos[adr:adr + 7] = [*pos, 1.0, 0.0, 0.0, 0.0]
        self.stop_object(name)
        mujoco.mj_forward(self.model, self.data)

    def _park(self, slot: str) -> None:
        """Move a slot out of sight, floating (gravity compensated) and without contacts."""
        model, data = self.model, self.data
        adr, dof = self._slot_qpos[slot], self._slot_dof[slot]
        data.qpos[adr:adr + 7] = [*self._slot_home[slot], 1.0, 0.0, 0.0, 0.0]
        data.qvel[dof:dof + 6] = 0.0
        model.body_gravcomp[model.body(slot).id] = 1.0
        geom = self._slot_geoms[slot]
        model.geom_contype[geom] = 0
        model.geom_conaffinity[geom] = 0

    def _activate(self, slot: str, colour: str) -> None:
        """Give a slot its colour, gravity and contacts."""
        model = self.model
        model.body_gravcomp[model.body(slot).id] = 0.0
        geom = self._slot_geoms[slot]
        model.geom_contype[geom] = scene.OBJECT_CONTYPE
        model.geom_conaffinity[geom] = scene.OBJECT_CONAFFINITY
        rgba = np.array(COLOURS[colour])
        model.geom_rgba[geom] = rgba
        if slot in self._slot_rims:
            model.geom_rgba[self._slot_rims[slot]] = [*(0.55 * rgba[:3]), 1.0]

    def _spawn(self, task: SceneRequest) -> None:
        """Assign slots to the task's objects and place them at seeded positions."""
        free = {shape: [s for s, sh in self._slots.items() if sh == shape] for shape in SHAPES}
        for name in task.objects:
            colour, shape = split_name(name)
            if not free[shape]:
                raise SceneLayoutError(f'too many {shape}s in one scene: {task.objects}')
            slot = free[shape].pop(0)
            self._activate(slot, colour)
            self.objects[name] = slot
        radii = [SHAPES[split_name(n)[1]].radius for n in task.objects]
        beside = task.reference is not None and split_name(task.reference)[1] != 'plate'
        positions = sample_layout(self.rng, radii, _far_pair(task), room_beside=beside)
        for name, (x, y) in zip(task.objects, positions):
            self.place_object(name, x, y)

    def distance_to_object(self, point: np.ndarray, name: str) -> float:
        """Return the distance (m) from a base-frame point to an object's surface (0 inside)."""
        pos, quat = self.object_pose(name)
        rot = wxyz_to_mat(xyzw_to_wxyz(quat))
        local = rot.T @ (np.asarray(point, dtype=float) - pos)
        shape = self.object_shape(name)
        if shape.geom == 'box':
            outside = np.maximum(np.abs(local) - np.array(shape.size), 0.0)
            return float(np.linalg.norm(outside))
        radius, half = shape.size
        radial = max(float(np.hypot(local[0], local[1])) - radius, 0.0)
        axial = max(abs(float(local[2])) - half, 0.0)
        return float(np.hypot(radial, axial))

    def hand_object_distance(self, name: str, side: str = 'right', limit: float = 0.1
                             ) -> float:
        """Return the smallest distance (m) between a hand's collision geoms and an object."""
        return self.nearest_hand_geom(name, side, limit)[0]

    def nearest_hand_geom(self, name: str, side: str = 'right', limit: float = 0.1
                          ) -> tuple[float, int]:
        """Return the distance (m) to an object from the hand's nearest collision geom, and it."""
        target = self.object_geom(name)
        return min((mujoco.mj_geomDistance(self.model, self.data, geom, target, limit, None), geom)
                   for geom in self._hand_geoms[side])

    # Grasp welds (the mechanism; when to use it is grasp.GraspAssist's job) ------------------

    def held_object(self, side: str = 'right') -> Optional[str]:
        """Return the object welded to a hand, or None."""
        for name, slot in self.objects.items():
            if self.data.eq_active[self._welds[(side, slot)]]:
                return name
        return None

    def attach(self, name: str, side: str = 'right') -> None:
        """Weld an object to a hand where it is now, and stop it colliding with the robot."""
        model, data = self.model, self.data
        slot = self.objects[name]
        weld = self._welds[(side, slot)]
        hand = model.body(scene.HAND_BODY[side]).id
        body = model.body(slot).id
        hand_rot = data.xmat[hand].reshape(3, 3)
        relpos = hand_rot.T @ (data.xpos[body] - data.xpos[hand])
        hand_inv = np.zeros(4)
        mujoco.mju_negQuat(hand_inv, data.xquat[hand])
        relquat = np.zeros(4)
        mujoco.mju_mulQuat(relquat, hand_inv, data.xquat[body])
        # Weld data: anchor (3), relative position (3), relative quaternion (4), torque scale.
        model.eq_data[weld, 0:3] = 0.0
        model.eq_data[weld, 3:6] = relpos
        model.eq_data[weld, 6:10] = relquat
        model.eq_data[weld, 10] = 1.0
        data.eq_active[weld] = 1
        model.geom_conaffinity[self._slot_geoms[slot]] = scene.OBJECT_CONTYPE

    def detach(self, side: str = 'right') -> Optional[str]:
        """Release the object welded to a hand (its robot contacts stay off); return its name."""
        name = self.held_object(side)
        if name is not None:
            self.data.eq_active[self._welds[(side, self.objects[name])]] = 0
        return name

    def stop_object(self, name: str) -> None:
        """Zero an object's linear and angular velocity (it stays where it is)."""
        dof = self._slot_dof[self.objects[name]]
        self.data.qvel[dof:dof + 6] = 0.0

    def restore_robot_contacts(self, name: str) -> None:
        """Let an object collide with the robot again (after a release, once the hand is clear)."""
        self.model.geom_conaffinity[self.object_geom(name)] = scene.OBJECT_CONAFFINITY

    def robot_contacts_enabled(self, name: str) -> bool:
        """Return whether an object currently collides with the robot."""
        return bool(self.model.geom_conaffinity[self.object_geom(name)]
                    & scene.ROBOT_CONTYPE)

    # Rendering -------------------------------------------------------------------------------

    def render(self, camera: str = scene.HEAD_CAMERA, size: int | tuple[int, int] = 224
               ) -> np.ndarray:
        """Render a camera to uint8 RGB (H, W, 3); one renderer per size is kept and reused."""
        height, width = (size, size) if isinstance(size, int) else size
        renderer = self._renderers.get((height, width))
        if renderer is None:
            renderer = mujoco.Renderer(self.model, height, width)
            self._renderers[(height, width)] = renderer
        renderer.update_scene(self.data, camera=camera)
        return renderer.render().copy()

    def close(self) -> None:
        """Free the renderers' GL contexts (call before the interpreter exits)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def __enter__(self) -> TabletopWorld:
        """Use the world as a context manager that closes its renderers."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the renderers."""
        self.close()


def _far_pair(task: SceneRequest) -> Optional[tuple[int, int]]:
    """Return the indices of target and reference, which a layout keeps well apart."""
    if task.reference is None or task.reference not in task.objects:
        return None
    return task.objects.index(task.target), task.objects.index(task.reference)
