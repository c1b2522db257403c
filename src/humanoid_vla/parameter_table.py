"""
Tables of node parameters (name, default, description), kept free of ROS.

Each node package lists its parameters once, as ParameterSpec entries; the node declares them with
their descriptions, and a test checks config/<node>.yaml against the same table.
"""

from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter: its name, its default value and what it means."""

    name: str
    default: Any
    description: str


def defaults(specs: Iterable[ParameterSpec]) -> dict[str, Any]:
    """Return the defaults of a parameter table by name."""
    return {spec.name: spec.default for spec in specs}
