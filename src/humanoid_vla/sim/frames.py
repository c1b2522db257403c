"""
Small pose helpers: MuJoCo stores quaternions wxyz, the action spec uses xyzw.

Kept in one place so that no module converts the order by hand.
"""

from __future__ import annotations

import mujoco
import numpy as np


def wxyz_to_xyzw(quat: np.ndarray) -> np.ndarray:
    """Return a wxyz quaternion in xyzw order."""
    quat = np.asarray(quat, dtype=float)
    return np.array([quat[1], quat[2], quat[3], quat[0]])


def xyzw_to_wxyz(quat: np.ndarray) -> np.ndarray:
    """Return an xyzw quaternion in wxyz order."""
    quat = np.asarray(quat, dtype=float)
    return np.array([quat[3], quat[0], quat[1], quat[2]])


def mat_to_wxyz(rotation: np.ndarray) -> np.ndarray:
    """Return the wxyz quaternion of a 3x3 rotation matrix."""
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.asarray(rotation, dtype=float).reshape(9))
    return quat


def wxyz_to_mat(quat: np.ndarray) -> np.ndarray:
    """Return the 3x3 rotation matrix of a wxyz quaternion (normalised first)."""
    quat = np.asarray(quat, dtype=float)
    quat = quat / np.linalg.norm(quat)
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, quat)
    return rotation.reshape(3, 3)


def to_frame(frame_pos: np.ndarray, frame_rot: np.ndarray, pos: np.ndarray,
             rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Express a world pose (pos, 3x3 rot) in a frame given by its world pose."""
    return frame_rot.T @ (pos - frame_pos), frame_rot.T @ rot


def from_frame(frame_pos: np.ndarray, frame_rot: np.ndarray, pos: np.ndarray,
               rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Express a pose given in a frame (pos, 3x3 rot) in the world."""
    return frame_pos + frame_rot @ pos, frame_rot @ rot


def rotation_angle(rot_a: np.ndarray, rot_b: np.ndarray) -> float:
    """Return the angle (rad) of the rotation between two 3x3 orientations."""
    cos = (np.trace(rot_a.T @ rot_b) - 1.0) / 2.0
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def step_towards_quat(current_xyzw: np.ndarray, goal_xyzw: np.ndarray, max_angle: float
                      ) -> np.ndarray:
    """Return the xyzw quaternion at most max_angle (rad) from current on the way to goal."""
    current = np.asarray(current_xyzw, dtype=float) / np.linalg.norm(current_xyzw)
    goal = np.asarray(goal_xyzw, dtype=float) / np.linalg.norm(goal_xyzw)
    if np.dot(current, goal) < 0.0:
        goal = -goal
    angle = 2.0 * np.arccos(np.clip(np.dot(current, goal), -1.0, 1.0))
    if angle <= max_angle or angle < 1e-9:
        return goal
    fraction = max_angle / angle
    half = angle / 2.0
    blended = (np.sin((1.0 - fraction) * half) * current + np.sin(fraction * half) * goal)
    return blended / np.linalg.norm(blended)
