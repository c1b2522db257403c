"""
Where the open hand comes down to touch an object so that the named object is touched first.

A touch counts only when the named object is among the first the hand touches (see
`success.task_success`), so the scripted expert must not brush a taller neighbour on its way:
it crosses the table above every object and then comes straight down over a spot chosen here.
The open hand is modelled, around the grasp site in the grasp orientation, as a few boxes
(fingers ahead, palm, thumb behind and lowest), measured from the G1 Dex3 geoms with
`TabletopWorld.hand_geoms`. All coordinates are base frame (m).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

from humanoid_vla.sim.tasks import TOUCH_DISTANCE
import numpy as np


class HandBox(NamedTuple):
    """Part of the open hand: x and y extent around the grasp site, lowest point below it."""

    x_min: float
    x_max: float
    half_width: float
    bottom: float  # z of the lowest point relative to the grasp site


# The open right hand in the grasp orientation (palm down, fingers forward and 30 degrees down):
# axis-aligned bounds of its collision geoms relative to the grasp site.
OPEN_HAND = (
    HandBox(0.035, 0.096, 0.044, -0.003),   # finger tips
    HandBox(-0.008, 0.062, 0.044, 0.012),   # finger roots
    HandBox(-0.073, 0.025, 0.044, 0.031),   # palm
    HandBox(-0.108, -0.062, 0.015, -0.027),  # thumb
)
HAND_BOTTOM = min(box.bottom for box in OPEN_HAND)
# The target must be touched at least this much higher (grasp-site height) than any neighbour,
# and before the hand's lowest point reaches the table.
FIRST_MARGIN = 0.01
# Extra height above every object while the hand crosses the table.
CROSSING_CLEARANCE = 0.015
# The grasp site reaches no further from the pelvis than this at touch heights (measured: 1-3 cm
# short at x 0.42 near the table at the sides of the workspace).
TOUCH_REACH_X = 0.40
# Nearer the pelvis than this, high over the left of the workspace, the right arm's IK folds.
TOUCH_MIN_X = 0.25
# Touch spots tried around the object's centre (site offsets, m).
SPOT_OFFSETS = tuple(np.array([dx, dy])
                     for dx in np.arange(-0.12, 0.061, 0.01)
                     for dy in np.arange(-0.07, 0.071, 0.01))


class TableObject(NamedTuple):
    """An object as the hand sees it from above: footprint centre, radius and top height."""

    x: float
    y: float
    radius: float
    top: float


def box_gap(site: np.ndarray, box: HandBox, obj: TableObject) -> float:
    """Return the horizontal gap between a hand box over `site` and an object's footprint."""
    dx = max(site[0] + box.x_min - obj.x, 0.0, obj.x - site[0] - box.x_max)
    dy = max(abs(obj.y - site[1]) - box.half_width, 0.0)
    return float(np.hypot(dx, dy) - obj.radius)


def contact_height(site: np.ndarray, obj: TableObject) -> Optional[float]:
    """
    Return the site height at which a hand coming down over `site` first touches the object.

    The hand comes straight down in the grasp orientation; None: it passes beside the object.
    """
    heights = [obj.top + TOUCH_DISTANCE - box.bottom for box in OPEN_HAND
               if box_gap(site, box, obj) <= TOUCH_DISTANCE]
    return max(heights) if heights else None


def first_touch_margin(site: np.ndarray, target: TableObject, others: Sequence[TableObject],
                       table_z: float) -> Optional[float]:
    """
    Return how much sooner (site height) the target is touched than anything else.

    Anything else: the first neighbour touched, or the table the hand would stand on. None
    when coming down over `site` misses the target.
    """
    target_height = contact_height(site, target)
    if target_height is None:
        return None
    heights = [h for h in (contact_height(site, obj) for obj in others) if h is not None]
    return target_height - max([table_z - HAND_BOTTOM, *heights])


def touch_spot(target: TableObject, others: Sequence[TableObject], table_z: float,
               preferred: np.ndarray) -> np.ndarray:
    """
    Return the grasp-site xy to come down over.

    Of the reachable spots where the target is touched at least FIRST_MARGIN before any
    neighbour and the table, the one nearest `preferred`; if none, the one where the target
    leads the most.
    """
    best, best_margin = preferred, -np.inf
    clear = []
    reach_x = max(TOUCH_REACH_X, float(preferred[0]))
    for offset in SPOT_OFFSETS:
        site = np.array([target.x, target.y]) + offset
        if not TOUCH_MIN_X <= site[0] <= reach_x:
            continue
        margin = first_touch_margin(site, target, others, table_z)
        if margin is None:
            continue
        if margin >= FIRST_MARGIN:
            clear.append(site)
        elif margin > best_margin:
            best, best_margin = site, margin
    if clear:
        return min(clear, key=lambda site: float(np.linalg.norm(site - preferred)))
    return best


def crossing_height(objects: Sequence[TableObject]) -> float:
    """Return a grasp-site height at which the open hand passes over every object untouched."""
    return max(obj.top for obj in objects) + TOUCH_DISTANCE - HAND_BOTTOM + CROSSING_CLEARANCE
