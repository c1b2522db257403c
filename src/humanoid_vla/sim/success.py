"""
Task success read from simulator state (contacts, distances, welds, velocities).

Separate from task sampling so that `tasks` stays importable without mujoco. Thresholds live in
`tasks` next to the table of task families.
"""

from __future__ import annotations

from typing import Collection, Optional

from humanoid_vla.sim.tasks import (NEXT_TO_GAP, ON_PLATE_MARGIN, RELEASE_CLEARANCE,
                                    REST_HEIGHT, REST_SPEED, TaskSpec, TOUCH_DISTANCE)
from humanoid_vla.sim.world import TabletopWorld
import numpy as np


def touch_success(world: TabletopWorld, target: str, side: str = 'right') -> bool:
    """Return whether a collision geom of the hand is within TOUCH_DISTANCE of the target."""
    return world.hand_object_distance(target, side) <= TOUCH_DISTANCE


def touched_objects(world: TabletopWorld, side: str = 'right') -> frozenset[str]:
    """Return every object a collision geom of the hand is within TOUCH_DISTANCE of."""
    return frozenset(name for name in world.object_names()
                     if world.hand_object_distance(name, side) <= TOUCH_DISTANCE)


def resting(world: TabletopWorld, name: str) -> bool:
    """Return whether an object is free (held by no hand) and nearly still."""
    free = all(world.held_object(side) != name for side in ('right', 'left'))
    return free and world.object_speed(name) <= REST_SPEED


def released(world: TabletopWorld, name: str, side: str = 'right') -> bool:
    """Return whether the hand has let go of an object: not welded and not touching it."""
    return (world.held_object(side) != name
            and world.hand_object_distance(name, side) > RELEASE_CLEARANCE)


def bottom_z(world: TabletopWorld, name: str) -> float:
    """Return the base-frame height of an object's underside (upright objects)."""
    return float(world.object_pose(name)[0][2] - world.object_shape(name).height / 2)


def on_plate(world: TabletopWorld, target: str, plate: str) -> bool:
    """Return whether the target rests on the plate: inside its rim and on its top face."""
    target_pos, plate_pos = world.object_pose(target)[0], world.object_pose(plate)[0]
    plate_shape = world.object_shape(plate)
    inside = np.hypot(*(target_pos - plate_pos)[:2]) <= plate_shape.radius - ON_PLATE_MARGIN
    plate_top = plate_pos[2] + plate_shape.height / 2
    gap = bottom_z(world, target) - plate_top
    return bool(inside and -REST_HEIGHT <= gap <= REST_HEIGHT)


def footprint_gap(world: TabletopWorld, target: str, reference: str) -> float:
    """Return the free horizontal gap between two objects' footprints (< 0: they overlap)."""
    target_pos, ref_pos = world.object_pose(target)[0], world.object_pose(reference)[0]
    reach = world.object_shape(target).radius + world.object_shape(reference).radius
    return float(np.hypot(*(target_pos - ref_pos)[:2]) - reach)


def next_to(world: TabletopWorld, target: str, reference: str) -> bool:
    """Return whether the target stands on the table beside the reference (gap <= NEXT_TO_GAP)."""
    close = footprint_gap(world, target, reference) <= NEXT_TO_GAP
    on_table = abs(bottom_z(world, target) - world.table_top_z()) <= REST_HEIGHT
    return bool(close and on_table)


def pick_place_success(world: TabletopWorld, task: TaskSpec, side: str = 'right') -> bool:
    """Return whether the target was put in relation to the reference, released and resting."""
    target, reference = task.target, task.reference
    if not (resting(world, target) and released(world, target, side)):
        return False
    if task.relation == 'on':
        return on_plate(world, target, reference)
    return next_to(world, target, reference)


def task_success(world: TabletopWorld, task: TaskSpec, side: str = 'right',
                 picked: Optional[Collection[str]] = None,
                 first_touched: Optional[Collection[str]] = None) -> bool:
    """
    Return whether the world's state satisfies the task.

    ``picked`` is what the hand has held since the reset (``SimEnvironment`` keeps it): when
    given, a pick-and-place counts only if its target is among them, because a hand that
    pushes the object into place has not picked and placed it. ``first_touched`` is what the
    hand touched first (``SimEnvironment`` keeps it; empty before any touch): when given, a
    touch counts only if the target is among them, because a hand that sweeps over the table
    touches the named object sooner or later (a language-blind policy touched it in 14 of 20
    episodes without this rule, where choosing blindly hits 1 in 4).
    """
    if task.family == 'touch':
        if first_touched and task.target not in first_touched:
            return False
        return touch_success(world, task.target, side)
    if picked is not None and task.target not in picked:
        return False
    return pick_place_success(world, task, side)
