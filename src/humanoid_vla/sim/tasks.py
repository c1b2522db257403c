"""
Language task families of the tabletop world, their train/novel split, and success checks.

Families:
- touch: "touch the red cup" (any shape, the plate included);
- pick_place: "pick up the red cup and place it next to the blue bowl" (reference: another
  cup, block or bowl, said with its colour) or "... on the plate" (the scene's only plate).

Every scene holds the target, the reference (pick_place) and distractors that often share one
object's colour or shape; the target is then drawn from the scene's objects, so only the
instruction says which object is meant (no object stands out as the likely one).

Train/novel split (generalisation tests use `split="novel"`):

| what                  | train                                  | novel                          |
|-----------------------|----------------------------------------|--------------------------------|
| target colour x shape | every combination except the held-out  | only the held-out ones:        |
|                       | ones (which never appear in train      | purple cup, orange block,      |
|                       | scenes, not even as distractors)       | green bowl, yellow plate       |
| touch phrasings       | TOUCH_PHRASINGS['train']               | TOUCH_PHRASINGS['novel']       |
| next-to phrasings     | NEXT_TO_PHRASINGS['train']             | NEXT_TO_PHRASINGS['novel']     |
| on-plate phrasings    | ON_PLATE_PHRASINGS['train']            | ON_PLATE_PHRASINGS['novel']    |

Colours: red, green, blue, yellow, purple, orange. Shapes: cup, block, bowl, plate (the plate is
never picked). Success is read from simulator state only (see touch_success and
pick_place_success for the thresholds).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import random
from types import MappingProxyType
from typing import Optional

from humanoid_vla.sim.catalog import COLOURS, object_name, SHAPES, split_name, words

FAMILIES = ('touch', 'pick_place')
SPLITS = ('train', 'novel')
HELD_OUT = frozenset({('purple', 'cup'), ('orange', 'block'), ('green', 'bowl'),
                      ('yellow', 'plate')})

TOUCH_PHRASINGS = MappingProxyType({
    'train': ('touch the {target}', 'reach out and touch the {target}',
              'use your hand to touch the {target}'),
    'novel': ('tap the {target}', 'put your hand on the {target}'),
})
NEXT_TO_PHRASINGS = MappingProxyType({
    'train': ('pick up the {target} and place it next to the {reference}',
              'put the {target} next to the {reference}'),
    'novel': ('move the {target} so that it is beside the {reference}',
              'grab the {target} and set it down by the {reference}'),
})
ON_PLATE_PHRASINGS = MappingProxyType({
    'train': ('pick up the {target} and place it on the plate', 'put the {target} on the plate'),
    'novel': ('set the {target} down on top of the plate', 'move the {target} onto the plate'),
})

TOUCH_DISTANCE = 0.02  # m between a hand collision geom and the target
NEXT_TO_GAP = 0.08  # m, largest free gap between the footprints of target and reference
ON_PLATE_MARGIN = 0.01  # m, the target centre stays this far inside the plate's rim
REST_SPEED = 0.05  # m/s, slower counts as resting
REST_HEIGHT = 0.01  # m, largest gap under a resting object
RELEASE_CLEARANCE = 0.005  # m between the hand and a released object


@dataclass(frozen=True)
class TaskSpec:
    """One episode's task: what to do, the words for it, and the objects of the scene."""

    family: str
    target: str
    reference: Optional[str]
    instruction: str
    seed: int
    objects: tuple[str, ...] = field(default=())
    split: str = 'train'

    @property
    def relation(self) -> Optional[str]:
        """Return 'on' (reference is the plate), 'next_to', or None for touch."""
        if self.reference is None:
            return None
        return 'on' if split_name(self.reference)[1] == 'plate' else 'next_to'


def _allowed(colour: str, shape: str, split: str) -> bool:
    """Return whether a colour x shape combination may be a target in this split."""
    return ((colour, shape) in HELD_OUT) == (split == 'novel')


def _may_appear(colour: str, shape: str, split: str) -> bool:
    """Return whether an object may appear at all (held-out ones never appear in train)."""
    return split == 'novel' or (colour, shape) not in HELD_OUT


def sample_task(seed: int, family: Optional[str] = None, split: str = 'train') -> TaskSpec:
    """Return a task with its scene objects, deterministic in (seed, family, split)."""
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    rng = random.Random(f'{seed}/{family}/{split}')
    family = family or rng.choice(FAMILIES)
    if family not in FAMILIES:
        raise ValueError(f'family must be one of {FAMILIES}, got {family!r}')
    shapes = [s for s in SHAPES if family == 'touch' or SHAPES[s].pickable]
    targets = [(c, s) for c in COLOURS for s in shapes if _allowed(c, s, split)]
    colour, shape = rng.choice(targets)
    target = object_name(colour, shape)
    objects = [target]
    reference = None
    if family == 'pick_place':
        relation = rng.choice(('on', 'next_to'))
        ref_shapes = ['plate'] if relation == 'on' else [s for s in SHAPES if s != 'plate']
        refs = [object_name(c, s) for c in COLOURS for s in ref_shapes
                if _may_appear(c, s, split) and object_name(c, s) != target]
        reference = rng.choice(refs)
        objects.append(reference)
    distractors = 3 if family == 'touch' else rng.choice((1, 2))
    objects += _distractors(rng, objects, distractors, split)
    # The distractors cluster around the first object's colour and shape, so the object
    # sharing most with the others would give the target away without the instruction (a
    # language-blind policy touched the right object 13 times in 20): the target is drawn
    # again from every object of the scene that may be one.
    candidates = [name for name in objects if name != reference
                  and _allowed(*split_name(name), split) and split_name(name)[1] in shapes]
    target = rng.choice(candidates)
    rng.shuffle(objects)
    instruction = _phrase(rng, family, target, reference, split)
    return TaskSpec(family, target, reference, instruction, seed, tuple(objects), split)


def _distractors(rng: random.Random, present: list[str], count: int, split: str) -> list[str]:
    """Return distractor objects, mostly sharing the target's colour or shape."""
    colour, shape = split_name(present[0])
    used = Counter(split_name(name)[1] for name in present)
    chosen: list[str] = []
    for _ in range(count):
        options = [object_name(c, s) for c in COLOURS for s in SHAPES
                   if _may_appear(c, s, split) and object_name(c, s) not in present + chosen
                   and used[s] < SHAPES[s].slots]
        confusers = [n for n in options if n.startswith(colour + '_') or n.endswith('_' + shape)]
        pool = confusers if confusers and rng.random() < 0.7 else options
        if not pool:
            break
        pick = rng.choice(pool)
        chosen.append(pick)
        used[split_name(pick)[1]] += 1
    return chosen


def _phrase(rng: random.Random, family: str, target: str, reference: Optional[str],
            split: str) -> str:
    """Return the instruction for a task in one of its split's phrasings."""
    if family == 'touch':
        table = TOUCH_PHRASINGS
    elif split_name(reference)[1] == 'plate':
        table = ON_PLATE_PHRASINGS
    else:
        table = NEXT_TO_PHRASINGS
    return rng.choice(table[split]).format(target=words(target),
                                           reference=words(reference) if reference else '')
