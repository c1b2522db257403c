"""
Learned models of the humanoid VLA stack.

Importing this package registers the custom VLA with ``AutoConfig`` / ``AutoModel``, so
``AutoModel.from_pretrained(checkpoint_dir)`` rebuilds it from a saved directory.
"""

from transformers import AutoConfig, AutoModel

from .configuration_custom_vla import CustomVLAConfig
from .language import InstructionCache, LanguageEncoderUnavailableError
from .modeling_custom_vla import CustomVLAModel, CustomVLAOutput

AutoConfig.register(CustomVLAConfig.model_type, CustomVLAConfig, exist_ok=True)
AutoModel.register(CustomVLAConfig, CustomVLAModel, exist_ok=True)

__all__ = [
    'CustomVLAConfig',
    'CustomVLAModel',
    'CustomVLAOutput',
    'InstructionCache',
    'LanguageEncoderUnavailableError',
]
