"""
Object catalogue of the tabletop world: colours, shapes and their sizes.

Kept apart from the scene builder so that task sampling (pure Python) and the simulator agree
on one list of names without the sampler importing mujoco.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

# RGBA of every colour word the instructions use.
COLOURS = MappingProxyType({
    'red': (0.85, 0.12, 0.10, 1.0),
    'green': (0.15, 0.65, 0.20, 1.0),
    'blue': (0.12, 0.30, 0.90, 1.0),
    'yellow': (0.95, 0.82, 0.10, 1.0),
    'purple': (0.55, 0.20, 0.75, 1.0),
    'orange': (1.00, 0.50, 0.05, 1.0),
})


@dataclass(frozen=True)
class Shape:
    """
    One object shape: its MuJoCo primitive and size, and what tasks may do with it.

    `radius` is the footprint radius used for spacing objects on the table and `height` the
    full height; `slots` is how many of this shape one scene can hold at once (the scene
    pre-allocates that many bodies so that a reset never recompiles the model).
    """

    name: str
    geom: str  # 'cylinder' or 'box'
    size: tuple[float, ...]  # MuJoCo half sizes: cylinder (r, h/2), box (x/2, y/2, z/2)
    pickable: bool
    slots: int

    @property
    def radius(self) -> float:
        """Return the footprint radius in metres: cylinder radius or half the box diagonal."""
        if self.geom == 'box':
            return float((self.size[0] ** 2 + self.size[1] ** 2) ** 0.5)
        return float(self.size[0])

    @property
    def height(self) -> float:
        """Return the full height in metres."""
        return float(2.0 * self.size[-1])


SHAPES = MappingProxyType({
    'cup': Shape('cup', 'cylinder', (0.028, 0.045), pickable=True, slots=2),
    'block': Shape('block', 'box', (0.024, 0.024, 0.024), pickable=True, slots=2),
    'bowl': Shape('bowl', 'cylinder', (0.05, 0.022), pickable=True, slots=2),
    'plate': Shape('plate', 'cylinder', (0.075, 0.006), pickable=False, slots=1),
})


def object_name(colour: str, shape: str) -> str:
    """Return the scene name of an object, e.g. 'red_cup' (also its words in instructions)."""
    return f'{colour}_{shape}'


def split_name(name: str) -> tuple[str, str]:
    """Return (colour, shape) of an object name made by object_name."""
    colour, _, shape = name.partition('_')
    if colour not in COLOURS or shape not in SHAPES:
        raise ValueError(f'not an object name of this catalogue: {name!r}')
    return colour, shape


def words(name: str) -> str:
    """Return how an instruction says an object, e.g. 'red cup'."""
    return name.replace('_', ' ')
