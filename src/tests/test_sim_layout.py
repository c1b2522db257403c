"""Free spots beside a reference: where the world and the expert put an object down."""

from humanoid_vla.sim.layout import (ENOUGH_ROOM, EXPERT_ENOUGH_ROOM, EXPERT_PLACE_GAPS, MIN_ROOM,
                                     Obstacle, PLACE_GAPS, PLACE_MIDDLE, PLACE_X, PLACE_Y,
                                     sample_layout, spot_beside)
import numpy as np
import pytest

CUP = 0.028  # footprint radius of a cup (catalog)


def footprint_gap(spot: np.ndarray, reference: Obstacle, radius: float) -> float:
    return float(np.hypot(spot[0] - reference.x, spot[1] - reference.y)
                 - reference.radius - radius)


def test_the_expert_puts_an_object_closer_to_the_reference_than_the_scene_check_needs():
    reference = Obstacle(0.34, -0.12, CUP)
    scene_spot, scene_room = spot_beside(reference, CUP, [])
    expert_spot, expert_room = spot_beside(reference, CUP, [], EXPERT_PLACE_GAPS,
                                           EXPERT_ENOUGH_ROOM)
    assert footprint_gap(scene_spot, reference, CUP) == pytest.approx(PLACE_GAPS[0])
    assert scene_room == ENOUGH_ROOM
    assert footprint_gap(expert_spot, reference, CUP) == pytest.approx(EXPERT_PLACE_GAPS[0])
    assert expert_room == EXPERT_ENOUGH_ROOM
    assert EXPERT_PLACE_GAPS[0] < PLACE_GAPS[0]


def test_of_the_free_spots_at_one_gap_the_one_nearest_the_middle_of_the_table_wins():
    # A reference in the far right corner: its free spots at the first gap lie on a half
    # circle, and those along the table's edges are at the edge of the arm's reach (picked
    # first in angle order, the spot lay 40 degrees off the way to the middle).
    reference = Obstacle(PLACE_X[1] - 0.03, PLACE_Y[0] + 0.06, CUP)
    spot, _ = spot_beside(reference, CUP, [], EXPERT_PLACE_GAPS, EXPERT_ENOUGH_ROOM)
    to_middle = PLACE_MIDDLE - np.array([reference.x, reference.y])
    to_spot = spot - np.array([reference.x, reference.y])
    cosine = np.dot(to_middle, to_spot) / np.linalg.norm(to_middle) / np.linalg.norm(to_spot)
    assert cosine > np.cos(np.radians(20))


def test_a_gap_where_the_hand_would_hit_the_reference_falls_back_to_a_wider_one():
    # Touching a cup (not low), the hand beside the target would overlap the reference at every
    # angle; a wider gap has room.
    reference = Obstacle(0.34, -0.12, CUP)
    spot, room = spot_beside(reference, CUP, [], (0.0, EXPERT_PLACE_GAPS[-1]),
                             EXPERT_ENOUGH_ROOM)
    assert room == EXPERT_ENOUGH_ROOM
    assert footprint_gap(spot, reference, CUP) == pytest.approx(EXPERT_PLACE_GAPS[-1])


def test_no_free_spot_reports_less_than_the_minimum_room():
    reference = Obstacle(0.34, -0.12, CUP)
    wall = [Obstacle(0.34 + r * np.cos(a), -0.12 + r * np.sin(a), 0.02, low=True)
            for r in np.arange(0.06, 0.2, 0.02) for a in np.linspace(0, 2 * np.pi, 48, False)]
    _, room = spot_beside(reference, CUP, wall, EXPERT_PLACE_GAPS, EXPERT_ENOUGH_ROOM)
    assert room < MIN_ROOM


def test_scene_layouts_with_room_beside_have_a_free_spot_for_the_expert_too():
    radii = [CUP, CUP, 0.034, 0.05]
    for seed in range(30):
        placed = sample_layout(np.random.default_rng(seed), radii, (0, 1), room_beside=True)
        others = [Obstacle(*placed[i], radii[i]) for i in (2, 3)]
        _, room = spot_beside(Obstacle(*placed[1], radii[1]), radii[0], others,
                              EXPERT_PLACE_GAPS, EXPERT_ENOUGH_ROOM)
        assert room >= MIN_ROOM, seed
