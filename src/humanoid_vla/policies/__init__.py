"""
Policy backends behind one interface: custom VLA, OpenVLA and a scripted test policy.

Only the interface and the registry are imported here; ``make_policy(name, ...)`` imports a
backend's module when it is first asked for.
"""

from humanoid_vla.policies.base import Observation, ObservationError, Policy, validate_observation
from humanoid_vla.policies.registry import (
    available_policies,
    make_policy,
    register_policy,
    UnknownPolicyError,
)

__all__ = [
    'Observation',
    'ObservationError',
    'Policy',
    'UnknownPolicyError',
    'available_policies',
    'make_policy',
    'register_policy',
    'validate_observation',
]
