"""
Instruction paraphrases for training: rewrite a recorded instruction in other words.

A recorder stores one phrasing per episode, and a scripted expert draws from a handful of
templates, so a model trained on its demos meets the same few sentences over and over and
leans on their exact wording (a frozen language encoder gives "tap the cup" other token states
than "touch the cup").  A :class:`ParaphraseTable` holds groups of templates that mean the same
thing ("touch the {target}", "reach for the {target} and touch it", ...); an instruction that
matches one template of a group is rewritten, with the same slot values, in another template of
that group.  Instructions that match no template are kept as they are.

The table is data (a YAML file, see ``config/instruction_paraphrases_sim.yaml``):

    probability: 0.5          # chance that a matching instruction is rewritten
    groups:
      touch:
        - touch the {target}
        - reach for the {target} and touch it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import re
import string
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import yaml


class ParaphraseTableError(ValueError):
    """A paraphrase table is unusable: bad probability, empty group, unknown slot layout."""


def template_slots(template: str) -> tuple[str, ...]:
    """Return the slot names of ``template`` in order ("put the {target} ..." -> target, ...)."""
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


def template_words(template: str) -> set[str]:
    """Return the lower-case words of ``template`` outside its slots."""
    text = re.sub(r'\{[^}]*\}', ' ', template.lower())
    return set(re.findall(r"[a-z']+", text))


def _template_pattern(template: str) -> re.Pattern[str]:
    """Compile ``template`` into a full-match regex with one named group per slot."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name:
            parts.append(f'(?P<{name}>.+?)')
    return re.compile(''.join(parts))


@dataclass(frozen=True)
class _Template:
    text: str
    slots: frozenset[str]
    pattern: re.Pattern[str]


class ParaphraseTable:
    """Groups of equivalent instruction templates and the rewriting they allow."""

    def __init__(self, groups: Mapping[str, Sequence[str]], probability: float = 0.5) -> None:
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) \
                or not 0.0 <= probability <= 1.0:
            raise ParaphraseTableError(f'probability must be in [0, 1], got {probability!r}')
        if not groups:
            raise ParaphraseTableError('a paraphrase table needs at least one group')
        self.probability = float(probability)
        # Phrasings per instruction, worked out once: rewrite() runs for every training sample.
        self._variants: dict[str, list[str]] = {}
        self.groups: dict[str, tuple[_Template, ...]] = {}
        for name, templates in groups.items():
            self.groups[str(name)] = self._build_group(str(name), templates)

    @staticmethod
    def _build_group(name: str, templates: Sequence[str]) -> tuple[_Template, ...]:
        if isinstance(templates, str) or not templates or len(templates) < 2:
            raise ParaphraseTableError(
                f'group {name!r} needs a list of at least two templates, got {templates!r}')
        built = []
        for text in templates:
            if not isinstance(text, str) or not text.strip():
                raise ParaphraseTableError(f'group {name!r}: template {text!r} is not text')
            slots = template_slots(text)
            if len(set(slots)) != len(slots):
                raise ParaphraseTableError(f'group {name!r}: {text!r} repeats a slot')
            built.append(_Template(text, frozenset(slots), _template_pattern(text)))
        if len({t.slots for t in built}) != 1:
            raise ParaphraseTableError(
                f'group {name!r}: every template must have the same slots, got '
                f'{sorted(sorted(t.slots) for t in built)}')
        if len({t.text for t in built}) != len(built):
            raise ParaphraseTableError(f'group {name!r} lists a template twice')
        return tuple(built)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ParaphraseTable:
        """Build a table from ``{'probability': p, 'groups': {name: [templates]}}``."""
        if not isinstance(data, Mapping):
            raise ParaphraseTableError('a paraphrase table is a mapping with probability, groups')
        unknown = set(data) - {'probability', 'groups'}
        if unknown:
            raise ParaphraseTableError(f'unknown key(s) in a paraphrase table: {sorted(unknown)}')
        groups = data.get('groups')
        if not isinstance(groups, Mapping):
            raise ParaphraseTableError('groups must map a group name to a list of templates')
        return cls(groups, data.get('probability', 0.5))

    @classmethod
    def from_yaml(cls, path: str | Path) -> ParaphraseTable:
        """Read a table from a YAML file (see the module docstring)."""
        with open(path, encoding='utf-8') as stream:
            return cls.from_mapping(yaml.safe_load(stream) or {})

    def match(self, instruction: str) -> tuple[str, dict[str, str]] | None:
        """Return (group name, slot values) of the first template ``instruction`` matches."""
        for name, templates in self.groups.items():
            for template in templates:
                found = template.pattern.fullmatch(instruction)
                if found:
                    return name, found.groupdict()
        return None

    def variants(self, instruction: str) -> list[str]:
        """Return every phrasing ``instruction`` may be rewritten to, itself first."""
        known = self._variants.get(instruction)
        if known is not None:
            return known
        matched = self.match(instruction)
        result = [instruction]
        if matched is not None:
            name, values = matched
            others = [t.text.format(**values) for t in self.groups[name]]
            result += [text for text in others if text != instruction]
        self._variants[instruction] = result
        return result

    def all_variants(self, instructions: Iterable[str]) -> set[str]:
        """Return the phrasings of every instruction (to encode them all before training)."""
        result: set[str] = set()
        for instruction in set(instructions):
            result.update(self.variants(instruction))
        return result

    def rewrite(self, instructions: Sequence[str], rng: np.random.Generator) -> list[str]:
        """Rewrite each instruction with ``probability`` into another phrasing of its group."""
        result = []
        for instruction in instructions:
            options = self.variants(instruction)
            if len(options) > 1 and rng.random() < self.probability:
                instruction = options[1 + int(rng.integers(len(options) - 1))]
            result.append(instruction)
        return result

    def words(self) -> set[str]:
        """Return every word the templates use outside their slots."""
        return {word for group in self.groups.values() for t in group
                for word in template_words(t.text)}
