"""
MuJoCo tabletop world for the Unitree G1 with Dex3 hands, without ROS.

The pieces, one job each: `assets` finds the robot model files, `scene` composes the MjSpec
(robot, table, head camera, object slots), `world` runs and renders it, `ik` turns hand poses
into joint targets, `grasp` is the documented grasp assist, `tasks` samples language tasks and
checks success from simulator state, `expert` is the scripted demonstrator and
`episode_runner` ties them together behind the policy's action vector.

Frames: every pose this package returns or accepts is in `base_link`, which is the G1 pelvis
frame (x forward, y left, z up; the pelvis is fixed 0.793 m above the floor). Quaternions are
xyzw, as in `humanoid_vla.actions`.

Nothing here imports mujoco at package import time, so `import humanoid_vla.sim` works on a
machine without it; the modules that need mujoco import it themselves.
"""
