"""
Build the configured policy backend from the server's generic settings.

The server knows a backend name, a checkpoint (or model id), a device and a JSON object of
backend-specific options; this maps them onto the backend's constructor.
"""

from typing import Any, Optional

from humanoid_vla.actions import ActionSpec
from humanoid_vla.policies.base import Policy
from humanoid_vla.policies.registry import make_policy

DEFAULT_OPENVLA_MODEL = 'openvla/openvla-7b'


def load_policy(backend: str, checkpoint: str, spec: ActionSpec, device: str = 'cpu',
                temporal_ensembling: bool = False,
                options: Optional[dict[str, Any]] = None) -> Policy:
    """Return a ready policy; raises with a clear message when it cannot be built."""
    kwargs: dict[str, Any] = dict(options or {})
    kwargs['action_spec'] = spec
    if backend == 'scripted':
        pass
    elif backend == 'custom':
        if not checkpoint:
            raise ValueError("policy_backend 'custom' needs policy_checkpoint (a directory)")
        kwargs.update(checkpoint=checkpoint, device=device,
                      temporal_ensembling=temporal_ensembling)
    elif backend == 'openvla':
        kwargs.update(model_name_or_path=checkpoint or DEFAULT_OPENVLA_MODEL, device=device)
    else:
        kwargs.update(checkpoint=checkpoint, device=device)
    return make_policy(backend, **kwargs)
