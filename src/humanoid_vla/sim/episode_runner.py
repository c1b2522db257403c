"""
SimEnvironment: the tabletop world behind the policy's action vector and observations.

A policy (or the scripted expert) sends the default action spec's vector every control tick:
right_hand_pose (x, y, z, qx, qy, qz, qw in base_link, metres) + right_gripper (0 open .. 1
closed). The environment turns the pose into joint targets with HandIK, the gripper into Dex3
finger targets, applies the grasp assist rules, and advances the physics by one control period.
"""

from __future__ import annotations

from typing import Any, Optional

from humanoid_vla.sim.grasp import GraspAssist
from humanoid_vla.sim.ik import gripper_targets, HandIK, IKResult
from humanoid_vla.sim.success import task_success, touched_objects
from humanoid_vla.sim.tasks import sample_task, TaskSpec
from humanoid_vla.sim.world import TabletopWorld
import numpy as np

CONTROL_HZ = 10.0
ACTION_DIM = 8  # right_hand_pose (7) + right_gripper (1)


class SimEnvironment:
    """World + IK + grasp assist + task, stepped one action at a time."""

    def __init__(self, world: Optional[TabletopWorld] = None, ik: Optional[HandIK] = None,
                 control_hz: float = CONTROL_HZ, image_size: int = 224,
                 side: str = 'right') -> None:
        """Use the given world and IK, or build them (compiling the scene takes ~1-2 s)."""
        self.world = world or TabletopWorld()
        self.ik = ik or HandIK()
        self.control_hz = control_hz
        self.image_size = image_size
        self.side = side
        self.grasp = GraspAssist(self.world, side)
        self.task: Optional[TaskSpec] = None
        self.gripper = 0.0
        self.last_ik: Optional[IKResult] = None
        # Objects the hand has held since the reset: a pick-and-place needs its target here.
        self.picked: set[str] = set()
        # The object(s) of a touch task the hand touched first: a touch needs its target here.
        self.first_touched: frozenset[str] = frozenset()

    def reset(self, seed: int, family: Optional[str] = None, split: str = 'train') -> str:
        """Sample a task from the seed, reset the world to it, and return its instruction."""
        return self.reset_task(sample_task(seed, family, split))

    def reset_task(self, task: TaskSpec) -> str:
        """Reset the world to a given task (its seed places the objects); return the words."""
        self.task = None  # a scene that fails to spawn leaves no task to check success against
        self.world.reset(task.seed, task)
        self.task = task
        self.ik.reset(dict(zip(self.world.joint_names(), self.world.joint_positions())))
        self.grasp.reset()
        self.picked = set()
        self.first_touched = frozenset()
        self.gripper = 0.0
        self.world.set_joint_targets(gripper_targets(0.0, self.side))
        return task.instruction

    def apply_action(self, action: Any, sim_seconds: Optional[float] = None) -> IKResult:
        """Command one action vector (8) and simulate one control period (or sim_seconds)."""
        action = np.asarray(action, dtype=float).reshape(-1)
        if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
            raise ValueError(f'expected {ACTION_DIM} finite numbers, got {action}')
        quat = action[3:7]
        if np.linalg.norm(quat) < 1e-6:
            raise ValueError('the hand quaternion is zero')
        self.last_ik = self.ik.solve(action[:3], quat / np.linalg.norm(quat), self.side)
        self.world.set_joint_targets(self.last_ik.joint_targets)
        self.gripper = float(np.clip(action[7], 0.0, 1.0))
        self.world.set_joint_targets(gripper_targets(self.gripper, self.side))
        seconds = 1.0 / self.control_hz if sim_seconds is None else sim_seconds
        self.world.step(max(1, int(round(seconds / self.world.timestep))))
        held = self.grasp.update(self.gripper)
        if held is not None:
            self.picked.add(held)
        if not self.first_touched and self.task is not None and self.task.family == 'touch':
            self.first_touched = touched_objects(self.world, self.side)
        return self.last_ik

    def observe(self, render: bool = True) -> dict[str, Any]:
        """Return image (H, W, 3 uint8), joint_positions (43), ee_pose (7, xyzw) and gripper."""
        pos, quat = self.world.hand_pose(self.side)
        observation = {
            'joint_positions': self.world.joint_positions(),
            'ee_pose': np.concatenate([pos, quat]),
            'gripper': self.gripper,
        }
        if render:
            observation['image'] = self.world.render(size=self.image_size)
        return observation

    def success(self) -> bool:
        """Return whether the current task is done, from simulator state."""
        if self.task is None:
            return False
        return task_success(self.world, self.task, self.side, picked=self.picked,
                            first_touched=self.first_touched)

    def close(self) -> None:
        """Free the renderer."""
        self.world.close()
