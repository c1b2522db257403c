"""Where the expert's hand comes down to touch an object: the named object first."""

from humanoid_vla.sim.touch_plan import (contact_height, crossing_height, CURLED,
                                         FIRST_MARGIN, first_touch_margin, OPEN,
                                         ROOM_REACH_SLACK, ROOMY_SPOT_TIERS, spot_rooms,
                                         TableObject, TOUCH_MIN_X, TOUCH_REACH_X, touch_spot)
import numpy as np
import pytest

TABLE_Z = -0.093  # the simulated table's top in base_link
START = np.array([0.22, -0.22])  # where the hand starts (xy)
BLOCK = TableObject(0.30, -0.12, 0.034, TABLE_Z + 0.048)
PLATE_HEIGHT, CUP_HEIGHT = 0.012, 0.09


def near_half(obj: TableObject) -> np.ndarray:
    """Return the expert's preferred spot: over the half of the object nearer the robot."""
    return np.array([obj.x - 0.5 * obj.radius, obj.y])


def test_with_no_neighbour_the_hand_comes_down_over_the_near_half():
    spot, _ = touch_spot(BLOCK, [], TABLE_Z, near_half(BLOCK), START)
    assert np.linalg.norm(spot - near_half(BLOCK)) <= 0.0071  # the nearest 1 cm grid point
    assert first_touch_margin(spot, BLOCK, [], TABLE_Z) >= FIRST_MARGIN


def test_a_taller_neighbour_under_the_fingers_moves_the_spot():
    # A cup 4 cm in front of a block: over the block's near half, the fingers (which reach
    # 10 cm ahead of the grasp site) would come within the touch distance of the cup's rim
    # before the palm reaches the block.
    cup = TableObject(BLOCK.x + BLOCK.radius + 0.04 + 0.028, BLOCK.y, 0.028, TABLE_Z + CUP_HEIGHT)
    preferred = near_half(BLOCK)
    assert first_touch_margin(preferred, BLOCK, [cup], TABLE_Z) < 0
    spot, _ = touch_spot(BLOCK, [cup], TABLE_Z, preferred, START)
    assert first_touch_margin(spot, BLOCK, [cup], TABLE_Z) >= FIRST_MARGIN
    assert TOUCH_MIN_X <= spot[0] <= TOUCH_REACH_X


def test_the_curled_hand_clears_a_neighbour_the_open_fingers_reach():
    # The same cup 4 cm in front of the block: curled fingers end 3.5 cm shorter, so the hand
    # comes down over the block's near half without the cup in its way.
    cup = TableObject(BLOCK.x + BLOCK.radius + 0.04 + 0.028, BLOCK.y, 0.028, TABLE_Z + CUP_HEIGHT)
    preferred = near_half(BLOCK)
    assert first_touch_margin(preferred, BLOCK, [cup], TABLE_Z) < 0
    assert first_touch_margin(preferred, BLOCK, [cup], TABLE_Z, CURLED) >= FIRST_MARGIN
    spot, _ = touch_spot(BLOCK, [cup], TABLE_Z, preferred, START, hand=CURLED)
    assert np.linalg.norm(spot - preferred) <= 0.0071


def test_the_curled_hand_is_planned_with_its_own_lowest_point():
    # Curled finger tips hang lower than the open hand's thumb: over bare table the hand
    # crosses higher, and a target the curled core cannot reach before the table is refused.
    assert CURLED.bottom < OPEN.bottom
    end = np.array([0.30, 0.0])
    assert (crossing_height([], START, end, TABLE_Z, CURLED)
            - crossing_height([], START, end, TABLE_Z)) == pytest.approx(
                OPEN.bottom - CURLED.bottom)


def test_a_low_neighbour_is_touched_no_sooner_than_the_target():
    plate = TableObject(BLOCK.x + 0.12, BLOCK.y, 0.075, TABLE_Z + PLATE_HEIGHT)
    spot, _ = touch_spot(BLOCK, [plate], TABLE_Z, near_half(BLOCK), START)
    assert np.linalg.norm(spot - near_half(BLOCK)) <= 0.0071  # no room sought by default
    plate_height = contact_height(spot, plate)
    assert plate_height is None or contact_height(spot, BLOCK) > plate_height


def test_the_spot_keeps_room_from_a_neighbour_when_it_can():
    # A plate 1.2 cm beyond the block's far edge: over the near half, the finger tips are
    # 1 cm from where they would reach the plate first. The spot backs off towards the robot
    # to keep the wanted room (ROOMY_SPOT_TIERS[0]), and no further than it needs.
    plate = TableObject(BLOCK.x + 0.12, BLOCK.y, 0.075, TABLE_Z + PLATE_HEIGHT)
    preferred = near_half(BLOCK)
    assert first_touch_margin(preferred + [0.01, 0.0], BLOCK, [plate], TABLE_Z) < FIRST_MARGIN
    spot, _ = touch_spot(BLOCK, [plate], TABLE_Z, preferred, START, ROOMY_SPOT_TIERS)
    room = ROOMY_SPOT_TIERS[0]
    inside = 0.75 * room  # a miss of less than the room still touches the block first
    for offset in ([inside, 0.0], [0.0, inside], [0.0, -inside], [-inside, 0.0]):
        assert first_touch_margin(spot + offset, BLOCK, [plate], TABLE_Z) >= FIRST_MARGIN
    assert np.linalg.norm(spot - preferred) <= room + 0.0071


def test_room_is_not_sought_further_from_the_robot():
    # A tall cup 11 cm behind the block (towards the robot): the thumb comes down on it from
    # spots 1 cm behind the near half. Backing away from it would take the hand further out,
    # where the arm reaches worse than the model says; the spot keeps room by moving sideways.
    cup = TableObject(BLOCK.x - BLOCK.radius - 0.11, BLOCK.y, 0.028, TABLE_Z + CUP_HEIGHT)
    preferred = near_half(BLOCK)
    assert first_touch_margin(preferred - [0.01, 0.0], BLOCK, [cup], TABLE_Z) < FIRST_MARGIN
    spot, _ = touch_spot(BLOCK, [cup], TABLE_Z, preferred, START, ROOMY_SPOT_TIERS)
    assert first_touch_margin(spot, BLOCK, [cup], TABLE_Z) >= FIRST_MARGIN
    assert spot[0] <= preferred[0] + ROOM_REACH_SLACK


def test_a_spot_beside_the_target_misses_it():
    beside = np.array([BLOCK.x, BLOCK.y + 0.2])
    assert contact_height(beside, BLOCK) is None
    assert first_touch_margin(beside, BLOCK, [], TABLE_Z) is None


def test_the_hand_crosses_the_table_above_every_object_on_its_way():
    cup = TableObject(0.36, -0.25, 0.028, TABLE_Z + CUP_HEIGHT)
    plate = TableObject(0.28, 0.0, 0.075, TABLE_Z + PLATE_HEIGHT)
    objects = [BLOCK, cup, plate]
    end = np.array([BLOCK.x, BLOCK.y])
    height = crossing_height(objects, START, end, TABLE_Z)
    for fraction in np.linspace(0, 1, 50):  # finer than the planner's samples
        site = START + fraction * (end - START)
        for obj in objects:
            touched_at = contact_height(site, obj)
            assert touched_at is None or touched_at < height
    # Far from the way, the cup does not raise the crossing; over bare table it is low.
    far_end = np.array([0.30, 0.0])
    assert crossing_height([cup], np.array([0.25, 0.05]), far_end, TABLE_Z) < cup.top


def test_a_spot_s_room_is_the_distance_to_the_nearest_blocked_spot():
    sites = np.array([[0.0, 0.0], [0.01, 0.0], [0.03, 0.04]])
    rooms = spot_rooms(sites, np.array([False, False, True]))
    assert np.allclose(rooms, [0.05, np.hypot(0.02, 0.04), 0.0])
    assert np.all(np.isinf(spot_rooms(sites, np.zeros(3, dtype=bool))))
