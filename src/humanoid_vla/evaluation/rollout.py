"""
In-process rollouts of one task through the server's own controller, for the diagnoses.

`roll_out` resets a SimEnvironment to a task and steps it with an actor (the scripted expert,
or a policy behind the server's VLAController and safety filter with the server's simulation
limits; no ROS) until success or the step budget; `pick_diagnosis` and `touch_diagnosis`
watch each tick and sort the episode.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from humanoid_vla.control.controller import DEFAULT_REPLAN_STEPS
from humanoid_vla.policies.base import Observation
from humanoid_vla.sim.layout import HAND_WORKSPACE_MAX, HAND_WORKSPACE_MIN
from humanoid_vla.sim.tasks import TaskSpec
import numpy as np

# The server's per-tick limits (config/vla_server.yaml); the workspace is the simulation's.
MAX_POSITION_STEP = 0.05
MAX_ROTATION_STEP = 0.3

Actor = Callable[[], np.ndarray]


def roll_out(env, task: TaskSpec, make_actor: Callable[[object, TaskSpec], Actor],
             max_steps: int, substeps: int = 1,
             on_tick: Callable[[int], None] = lambda step: None) -> tuple[bool, int]:
    """
    Reset ``env`` to ``task``, run the actor until success or ``max_steps``.

    Returns (success, ticks run). ``on_tick(step)`` runs after every tick, before the
    success check. ``substeps``: apply each action that many times per tick, each for an
    equal share of the tick (IK solved each time). The bridge applies the latest command at
    every physics step (config/sim.yaml step_seconds 0.02: 5 per 10 Hz tick), which moves the
    arm differently from one IK solve per tick.
    """
    if substeps < 1:
        raise ValueError(f'substeps must be >= 1, got {substeps}')
    share = 1.0 / (env.control_hz * substeps)
    env.reset_task(task)
    env.world.settle()
    act = make_actor(env, task)
    step = 0
    for step in range(1, max_steps + 1):
        action = act()
        for _ in range(substeps):
            env.apply_action(action, sim_seconds=share)
        on_tick(step)
        if env.success():
            return True, step
    return False, step


def expert_actor(env, task: TaskSpec) -> Actor:
    """Return the scripted expert for one episode."""
    from humanoid_vla.sim.expert import ScriptedExpert
    return ScriptedExpert(env.world, task, env.side).act


def observe(env, instruction: str) -> Observation:
    """Return what the server would hand the policy now: camera frame and joint states."""
    seen = env.observe()
    return Observation(seen['image'], instruction,
                       np.asarray(seen['joint_positions'], np.float32))


def policy_actors(policy, observation_delay: int = 0,
                  replan_steps: int = DEFAULT_REPLAN_STEPS) -> Callable[[object, TaskSpec], Actor]:
    """
    Return a factory of per-episode actors that run ``policy`` as the server does.

    ``observation_delay`` ticks: each action is computed from the camera frame and joint states
    of that many ticks before (the first frame until then), the way a real loop acts on a frame
    that is already up to a tick old when the server reads it. ``replan_steps``: actions of a
    chunk executed before the policy is asked again (the server's parameter of that name).
    """
    if observation_delay < 0:
        raise ValueError(f'observation_delay must be >= 0, got {observation_delay}')
    from humanoid_vla.actions import ActionSpec
    from humanoid_vla.control.controller import VLAController
    from humanoid_vla.safety import SafetyFilter, SafetyLimits

    spec = ActionSpec.from_config(['right_hand_pose', 'right_gripper'])
    limits = SafetyLimits(np.array(HAND_WORKSPACE_MIN), np.array(HAND_WORKSPACE_MAX),
                          MAX_POSITION_STEP, MAX_ROTATION_STEP)
    controller = VLAController(policy, spec, SafetyFilter(limits), replan_steps)

    def make(env, task: TaskSpec) -> Actor:
        controller.start_goal()
        recent: deque[Observation] = deque(maxlen=observation_delay + 1)

        def act() -> np.ndarray:
            recent.append(observe(env, task.instruction))
            return controller.tick(recent[0]).action.to_vector(spec)
        return act
    return make
