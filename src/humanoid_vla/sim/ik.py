"""
Differential inverse kinematics (mink) from a target hand pose to G1 joint targets.

The policy commands where a hand should be (grasp site pose in base_link); the G1's position
actuators want joint angles. HandIK keeps its own kinematic model of the upper body (waist and
both arms; legs and fingers welded) and, for each target, iterates mink's QP from the last
commanded posture, so consecutive targets give consecutive joint targets. Only the arm of the
solved side moves: the waist stays at the home lean (HOME_POSTURE), because the head camera is
on the torso and a waist that leans during a reach (it did, 0.125 -> 0.34 rad) shifts the whole
table by ~50 of 224 pixels within an episode, which a policy then has to undo. The gripper
command maps 0 (open) .. 1 (closed) linearly onto the seven Dex3 finger joints.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Mapping, Optional

from humanoid_vla.sim import scene
from humanoid_vla.sim.frames import rotation_angle, wxyz_to_mat, xyzw_to_wxyz
import mink
import mujoco
import numpy as np

PRIMARY_SIDE = 'right'
# Joints the IK may move besides the primary arm: none, so the head camera's view stays put.
IK_WAIST_JOINTS: tuple[str, ...] = ()
# Dex3 right hand fully closed (rad, same joint order as scene.finger_joints); the left hand
# mirrors it (every finger joint of the left hand bends the other way).
RIGHT_HAND_CLOSED = (0.0, -0.5, -0.9, 0.9, 0.9, 0.9, 0.9)
RETRY_POSITION_ERROR = 0.005  # m; a warm-started solve this far off is retried from home


@dataclass
class IKResult:
    """Joint targets for one hand pose and how well the IK model reaches the pose."""

    joint_targets: dict[str, float]
    position_error: float  # m
    orientation_error: float  # rad
    iterations: int
    seconds: float

    def reached(self, position_tolerance: float = 0.01, orientation_tolerance: float = 0.1
                ) -> bool:
        """Return whether the pose was reached within the tolerances (m, rad)."""
        return (self.position_error <= position_tolerance
                and self.orientation_error <= orientation_tolerance)


def gripper_targets(closure: float, side: str = 'right') -> dict[str, float]:
    """Return Dex3 finger joint targets for a gripper command, 0 = open .. 1 = closed."""
    closure = float(np.clip(closure, 0.0, 1.0))
    sign = 1.0 if side == 'right' else -1.0
    return {name: sign * closure * angle
            for name, angle in zip(scene.finger_joints(side), RIGHT_HAND_CLOSED)}


def _ik_model() -> mujoco.MjModel:
    """Return the upper-body kinematic model: waist and both arms movable, the rest welded."""
    spec = scene.robot_spec()
    keep = set(scene.WAIST_JOINTS) | {j for side in scene.SIDES for j in scene.arm_joints(side)}
    for actuator in list(spec.actuators):
        spec.delete(actuator)
    for joint in list(spec.joints):
        if joint.name not in keep:
            spec.delete(joint)
    return spec.compile()


class HandIK:
    """Hand pose -> joint targets with mink; see the module docstring."""

    def __init__(self, max_iterations: int = 20, position_tolerance: float = 5e-4,
                 orientation_tolerance: float = 5e-3, orientation_cost: float = 0.5,
                 waist_posture_cost: float = 1e-2, arm_posture_cost: float = 3e-3) -> None:
        """Build the kinematic model, the tasks and the solver settings."""
        self.model = _ik_model()
        self.configuration = mink.Configuration(self.model)
        self.max_iterations = max_iterations
        self.position_tolerance = position_tolerance
        self.orientation_tolerance = orientation_tolerance
        self.joint_names = tuple(self.model.joint(j).name for j in range(self.model.njnt))
        self._qpos = {name: int(self.model.joint(name).qposadr[0]) for name in self.joint_names}
        self._dof = {name: int(self.model.joint(name).dofadr[0]) for name in self.joint_names}
        self.frame_tasks = {
            side: mink.FrameTask(scene.GRASP_SITE[side], 'site', position_cost=1.0,
                                 orientation_cost=orientation_cost, lm_damping=1e-3)
            for side in scene.SIDES}
        cost = np.array([waist_posture_cost if n in scene.WAIST_JOINTS else arm_posture_cost
                         for n in self.joint_names])
        self.posture_task = mink.PostureTask(self.model, cost=cost)
        self.limits = [mink.ConfigurationLimit(self.model)]
        self._frozen = {side: self._freeze_all_but(side) for side in scene.SIDES}
        self.home = self._posture(scene.HOME_POSTURE)
        self.posture_task.set_target(self.home)
        base = mujoco.MjData(self.model)
        mujoco.mj_kinematics(self.model, base)
        body = self.model.body(scene.BASE_BODY).id
        self._base_pos = base.xpos[body].copy()
        self._base_rot = base.xmat[body].reshape(3, 3).copy()
        self.reset()

    def _posture(self, joints: Mapping[str, float]) -> np.ndarray:
        """Return an IK configuration vector with the given joint angles (others zero)."""
        q = np.zeros(self.model.nq)
        for name, value in joints.items():
            if name in self._qpos:
                q[self._qpos[name]] = value
        return q

    def _freeze_all_but(self, side: str) -> mink.DofFreezingTask:
        """Return a constraint that holds every DOF the given side's solve must not move."""
        movable = set(scene.arm_joints(side))
        if side == PRIMARY_SIDE:
            movable |= set(IK_WAIST_JOINTS)
        frozen = [self._dof[n] for n in self.joint_names if n not in movable]
        return mink.DofFreezingTask(self.model, dof_indices=frozen)

    def movable_joints(self, side: str) -> tuple[str, ...]:
        """Return the joints whose targets a solve for this side sets."""
        joints = scene.arm_joints(side)
        return (IK_WAIST_JOINTS + joints) if side == PRIMARY_SIDE else joints

    def reset(self, joints: Optional[Mapping[str, float]] = None) -> None:
        """Seed the solver with a posture (by default the home posture), e.g. for a new episode."""
        self.configuration.update(self.home.copy() if joints is None else self._posture(joints))

    def solve(self, target_pos: np.ndarray, target_quat_xyzw: np.ndarray, side: str = 'right'
              ) -> IKResult:
        """
        Return joint targets that put the side's grasp site at the base_link target pose.

        The solve starts from the last solution, so consecutive targets give nearby postures.
        If that gets stuck (a joint limit on the way), it is solved again from the home
        posture and the closer of the two answers is kept.
        """
        start = time.perf_counter()
        rot_base = wxyz_to_mat(xyzw_to_wxyz(target_quat_xyzw))
        pos_world = self._base_pos + self._base_rot @ np.asarray(target_pos, dtype=float)
        rot_world = self._base_rot @ rot_base
        task = self.frame_tasks[side]
        task.set_target(mink.SE3.from_rotation_and_translation(
            mink.SO3.from_matrix(rot_world), pos_world))
        previous = self.configuration.q.copy()
        q, pos_error, rot_error, iterations = self._iterate(side, pos_world, rot_world)
        if pos_error > RETRY_POSITION_ERROR:
            seed = previous.copy()
            movable = [self._qpos[n] for n in self.movable_joints(side)]
            seed[movable] = self.home[movable]
            self.configuration.update(seed)
            retry = self._iterate(side, pos_world, rot_world)
            iterations += retry[3]
            if retry[1] < pos_error:
                q, pos_error, rot_error = retry[0], retry[1], retry[2]
            self.configuration.update(q)
        targets = {name: float(q[self._qpos[name]]) for name in self.movable_joints(side)}
        return IKResult(targets, pos_error, rot_error, iterations, time.perf_counter() - start)

    def _iterate(self, side: str, pos_world: np.ndarray, rot_world: np.ndarray
                 ) -> tuple[np.ndarray, float, float, int]:
        """Run mink's QP from the current configuration; return (q, errors, iterations)."""
        task = self.frame_tasks[side]
        iterations = 0
        for iterations in range(1, self.max_iterations + 1):
            velocity = mink.solve_ik(self.configuration, [task, self.posture_task], 1.0, 'daqp',
                                     damping=1e-4, limits=self.limits,
                                     constraints=[self._frozen[side]])
            self.configuration.integrate_inplace(velocity, 1.0)
            pos_error, rot_error = self._errors(side, pos_world, rot_world)
            if pos_error < self.position_tolerance and rot_error < self.orientation_tolerance:
                break
        return self.configuration.q.copy(), pos_error, rot_error, iterations

    def _errors(self, side: str, pos_world: np.ndarray, rot_world: np.ndarray
                ) -> tuple[float, float]:
        """Return position (m) and orientation (rad) error of the IK model's grasp site."""
        site = self.configuration.data.site(scene.GRASP_SITE[side])
        return (float(np.linalg.norm(site.xpos - pos_world)),
                rotation_angle(site.xmat.reshape(3, 3), rot_world))
