"""
Assisted grasp: a weld between hand and object stands in for a physically stable grip.

Why: a position-controlled three-finger hand squeezing a rigid cylinder in MuJoCo slips and
jitters unless contact parameters are tuned per object; the tasks are about where the hand goes
and when it closes, not about grip physics. So, documented and deterministic:

- attach: when the gripper command crosses to closed (>= CLOSED_THRESHOLD) and, within
  GRACE_SECONDS after that, the hand's grasp site is within ATTACH_DISTANCE of a pickable
  object's surface, that object is welded to the hand where it is (no snap) and stops colliding
  with the robot (the closing fingers would otherwise fight the weld). A hand that closed in
  empty air and then moves onto an object does not pick it up;
- release: as soon as the gripper command drops below CLOSED_THRESHOLD the weld is switched off
  and the object falls/rests under physics, starting at rest; its contacts with the robot come
  back once no hand geom is within CLEARANCE of it (so opening fingers inside it do not kick it
  away). Starting at rest matters: the weld makes the object share the hand's velocity, and the
  position-controlled arm snaps towards each new target at up to ~0.9 m/s, so a hand that opens
  while it starts to rise threw the object 5-10 cm (the bridge checks these rules at every 20 ms
  physics step, often while the arm accelerates). Fingers that let go of an object do not throw
  it; only the weld stand-in did.

The weld and contact switches are simulator state (`TabletopWorld.held_object`), so success
checks read them from the world, not from this class.
"""

from __future__ import annotations

from typing import Optional

from humanoid_vla.sim.world import TabletopWorld

CLOSED_THRESHOLD = 0.5
ATTACH_DISTANCE = 0.03  # m, grasp site to object surface
GRACE_SECONDS = 0.6
CLEARANCE = 0.01  # m


class GraspAssist:
    """Applies the attach/release rules above for one hand; call update() every control tick."""

    def __init__(self, world: TabletopWorld, side: str = 'right') -> None:
        """Bind to a world and a hand."""
        self.world = world
        self.side = side
        self.reset()

    def reset(self) -> None:
        """Forget the gripper history (call after the world is reset)."""
        self._closed = False
        self._closed_at = -1.0
        self._released: set[str] = set()

    def update(self, gripper: float) -> Optional[str]:
        """Apply the rules for this tick's gripper command; return the held object, if any."""
        world = self.world
        closed = gripper >= CLOSED_THRESHOLD
        if closed and not self._closed:
            self._closed_at = world.time
        self._closed = closed
        held = world.held_object(self.side)
        if not closed and held is not None:
            world.detach(self.side)
            world.stop_object(held)
            self._released.add(held)
            held = None
        if closed and held is None and world.time - self._closed_at <= GRACE_SECONDS:
            candidate = self._nearest_pickable()
            if candidate is not None:
                world.attach(candidate, self.side)
                self._released.discard(candidate)
                held = candidate
        self._restore_contacts()
        return held

    def _nearest_pickable(self) -> Optional[str]:
        """Return the pickable object nearest the grasp site within ATTACH_DISTANCE."""
        site, _ = self.world.hand_pose(self.side)
        best, best_distance = None, ATTACH_DISTANCE
        for name in self.world.object_names():
            if not self.world.object_shape(name).pickable:
                continue
            distance = self.world.distance_to_object(site, name)
            if distance <= best_distance:
                best, best_distance = name, distance
        return best

    def _restore_contacts(self) -> None:
        """Give released objects their robot contacts back once the hand is clear of them."""
        for name in list(self._released):
            if name not in self.world.objects:
                self._released.discard(name)
            elif self.world.hand_object_distance(name, self.side) > CLEARANCE:
                self.world.restore_robot_contacts(name)
                self._released.discard(name)
