"""
Policy backends by name, so launch files and configs can choose one with a string.

Backends live in ``humanoid_vla.policies.<name>`` and register themselves with
``@register_policy("<name>")``.  They are imported only when asked for: choosing the scripted
policy never imports the OpenVLA code, and adding a backend is adding one module.
"""

from importlib import import_module
import pkgutil
from typing import Any, Callable, TypeVar

from humanoid_vla.policies.base import Policy

PolicyFactory = TypeVar('PolicyFactory', bound=Callable[..., Policy])

_PACKAGE = 'humanoid_vla.policies'
_NOT_BACKENDS = frozenset({'base', 'registry'})
_REGISTRY: dict[str, Callable[..., Policy]] = {}


class UnknownPolicyError(ValueError):
    """No backend of that name is registered or importable."""


def register_policy(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Register a Policy class (or factory) under ``name``; used as a class decorator."""
    if not name or not name.isidentifier():
        raise ValueError(f'policy names must be Python identifiers, got {name!r}')

    def decorator(factory: PolicyFactory) -> PolicyFactory:
        existing = _REGISTRY.get(name)
        if existing is not None and _qualified_name(existing) != _qualified_name(factory):
            raise ValueError(
                f'policy name {name!r} is already registered by {_qualified_name(existing)}')
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_policies() -> list[str]:
    """Return the sorted names of registered backends and of backend modules not yet imported."""
    import humanoid_vla.policies as package

    names = set(_REGISTRY)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith('_') and module.name not in _NOT_BACKENDS:
            names.add(module.name)
    return sorted(names)


def make_policy(name: str, **kwargs: Any) -> Policy:
    """Build the backend registered as ``name``, importing its module on first use."""
    if name not in _REGISTRY and isinstance(name, str) and name.isidentifier() \
            and name not in _NOT_BACKENDS:
        module_name = f'{_PACKAGE}.{name}'
        try:
            import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise  # the backend exists but one of its own imports is missing
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownPolicyError(
            f"unknown policy {name!r}; available policies: {', '.join(available_policies())}")
    return factory(**kwargs)


def _qualified_name(factory: Callable[..., Any]) -> str:
    return f"{factory.__module__}.{getattr(factory, '__qualname__', repr(factory))}"
