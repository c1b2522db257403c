"""
Where objects go on the table: seeded spawn layouts and free spots to put an object down.

Both the world (spawning a scene that can be solved) and the scripted expert (choosing where to
put the target "next to" the reference) ask the same question, so the answer lives here: is
there a spot beside the reference where the object fits and the hand, which spans a strip along
x around the grasp site in the grasp orientation, touches nothing? All coordinates are base
frame (m), 2-D on the table.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np

# Where object centres may be spawned: reachable by the right hand, seen by the head camera.
SPAWN_X = (0.26, 0.42)
SPAWN_Y = (-0.30, 0.05)
SPAWN_GAP = 0.04  # free space between two spawned objects' footprints
# Target and reference start this far apart (footprint gap): "next to" is false at the start.
FAR_PAIR_GAP = 0.14
# Where an object may be put down (a little larger than the spawn area, still reachable).
PLACE_X = (0.25, 0.43)
PLACE_Y = (-0.31, 0.06)
# The place area's middle, where the arm reaches best; a free spot nearer to it is preferred.
PLACE_MIDDLE = np.array([np.mean(PLACE_X), np.mean(PLACE_Y)])
# Directions around a reference tried for a free spot (computed once: sampling a scene may ask
# for free spots thousands of times).
SPOT_DIRECTIONS = tuple(np.array([np.cos(angle), np.sin(angle)])
                        for angle in np.linspace(0, 2 * np.pi, 24, False))
# Footprint gaps tried when putting the target next to the reference, preferred first. Scene
# sampling needs room at one of these; the expert prefers EXPERT_PLACE_GAPS.
PLACE_GAPS = (0.04, 0.03, 0.05, 0.02, 0.06)
# The hand's extent around the grasp site while it puts an object down in the grasp orientation
# (fingers forward, thumb back): HAND_FRONT ahead, HAND_BACK behind, HAND_HALF_WIDTH to the
# sides, HAND_DEPTH below the site.
HAND_FRONT, HAND_BACK, HAND_HALF_WIDTH, HAND_DEPTH = 0.06, 0.09, 0.045, 0.04
# The safety box for hand targets in simulation (base_link = the G1 pelvis): hand targets lie in
# x 0.2-0.45, y -0.31-0.06, z -0.07-0.1; this box holds them with a margin.
HAND_WORKSPACE_MIN = (0.05, -0.5, -0.25)
HAND_WORKSPACE_MAX = (0.6, 0.3, 0.35)
ENOUGH_ROOM = 0.02  # more clearance than this does not make a spot better
MIN_ROOM = 0.005  # a spot with less clearance does not count as free
# The expert's own preference: close to the reference first, so that a policy that lets go a
# few cm off still lands inside NEXT_TO_GAP; the wider gaps stay as fallbacks for crowded tables,
# and a close spot needs only EXPERT_ENOUGH_ROOM of clearance to win over them.
EXPERT_PLACE_GAPS = (0.025, 0.02, 0.03, 0.015, 0.04, 0.05, 0.06)
EXPERT_ENOUGH_ROOM = MIN_ROOM


class SceneLayoutError(ValueError):
    """
    Raised when the requested objects cannot be placed on the table without overlap.

    A ValueError, so the bridge refuses such a reset with the reason instead of dying (one
    novel pick_place seed in a few hundred, with the task sampler before the current one).
    """


class Obstacle(NamedTuple):
    """An object on the table as a footprint; `low` ones lie below the hand's lowest point."""

    x: float
    y: float
    radius: float
    low: bool = False


def hand_room(spot: np.ndarray, obstacle: Obstacle) -> float:
    """Return the clearance between the hand over `spot` and an obstacle's footprint."""
    along = np.clip(obstacle.x - spot[0], -HAND_BACK, HAND_FRONT)
    return float(np.hypot(obstacle.x - spot[0] - along, obstacle.y - spot[1])
                 - obstacle.radius - HAND_HALF_WIDTH)


def spot_room(spot: np.ndarray, radius: float, obstacles: Sequence[Obstacle]) -> float:
    """Return the clearance of an object of this radius at `spot`, with the hand above it."""
    room = np.inf
    for obstacle in obstacles:
        room = min(room, float(np.hypot(obstacle.x - spot[0], obstacle.y - spot[1])
                               - obstacle.radius - radius))
        if not obstacle.low:
            room = min(room, hand_room(spot, obstacle))
    return room


def in_place_area(spot: np.ndarray) -> bool:
    """Return whether a spot lies where objects may be put down."""
    return bool(PLACE_X[0] <= spot[0] <= PLACE_X[1] and PLACE_Y[0] <= spot[1] <= PLACE_Y[1])


def spot_beside(reference: Obstacle, radius: float, obstacles: Sequence[Obstacle],
                gaps: Sequence[float] = PLACE_GAPS, enough_room: float = ENOUGH_ROOM
                ) -> tuple[np.ndarray, float]:
    """
    Return the best spot for an object of `radius` next to `reference`, and its clearance.

    Candidates lie around the reference at each of `gaps`, inside the place area; the
    reference itself counts as an obstacle (for the hand). At the first gap where some
    candidates have `enough_room`, the one nearest the middle of the place area wins (the
    corners are at the edge of the arm's reach); otherwise the one with the most room. A
    clearance below MIN_ROOM means there is no free spot.
    """
    centre = np.array([reference.x, reference.y])
    best, best_room = centre, -np.inf
    everything = [*obstacles, reference]
    for gap in gaps:
        roomy = []
        for direction in SPOT_DIRECTIONS:
            spot = centre + (reference.radius + radius + gap) * direction
            if not in_place_area(spot):
                continue
            room = min(spot_room(spot, radius, everything), enough_room)
            if room >= enough_room:
                roomy.append(spot)
            elif room > best_room:
                best, best_room = spot, room
        if roomy:
            nearest = min(roomy, key=lambda spot: float(np.linalg.norm(spot - PLACE_MIDDLE)))
            return nearest, enough_room
    return best, best_room


def sample_layout(rng: np.random.Generator, radii: Sequence[float],
                  far_pair: Optional[tuple[int, int]] = None, room_beside: bool = False,
                  attempts: int = 2000) -> list[tuple[float, float]]:
    """
    Return non-overlapping (x, y) centres in the spawn area for footprints of these radii.

    far_pair = (target, reference) indices are kept FAR_PAIR_GAP apart; with room_beside the
    reference also needs a free spot (spot_beside) where the target can be put down.
    """
    for _ in range(attempts):
        placed: list[tuple[float, float]] = []
        for radius in radii:
            for _ in range(100):
                x = rng.uniform(*SPAWN_X)
                y = rng.uniform(*SPAWN_Y)
                if all(np.hypot(x - px, y - py) >= radius + radii[i] + SPAWN_GAP
                       for i, (px, py) in enumerate(placed)):
                    placed.append((x, y))
                    break
            else:
                break
        if len(placed) < len(radii):
            continue
        if far_pair is None:
            return placed
        target, reference = far_pair
        gap = np.hypot(placed[target][0] - placed[reference][0],
                       placed[target][1] - placed[reference][1])
        if gap < radii[target] + radii[reference] + FAR_PAIR_GAP:
            continue
        if not room_beside:
            return placed
        others = [Obstacle(*placed[i], radii[i]) for i in range(len(radii))
                  if i not in far_pair]
        _, room = spot_beside(Obstacle(*placed[reference], radii[reference]), radii[target],
                              others)
        if room >= MIN_ROOM:
            return placed
    raise SceneLayoutError(f'could not place {len(radii)} objects on the table')
