"""Tests of the custom VLA configuration and model (tiny sizes; MiniLM only in a slow test)."""

from humanoid_vla.models import CustomVLAConfig, CustomVLAModel, InstructionCache
import humanoid_vla.models.modeling_custom_vla as modeling
import pytest
import torch
from transformers import AutoConfig, AutoModel, CLIPVisionModel

INSTRUCTIONS = ['pick up the red cube', 'open the drawer']


def tiny_config(**overrides):
    values = {
        'image_size': 32, 'patch_size': 8, 'vision_hidden_size': 32, 'vision_layers': 1,
        'vision_heads': 2, 'vision_intermediate_size': 64, 'language_encoder': 'tiny',
        'tiny_language_hidden_size': 16, 'tiny_language_layers': 1, 'hidden_size': 32,
        'num_heads': 4, 'num_cross_attention_layers': 1, 'num_fusion_layers': 1,
        'dropout': 0.0, 'action_dim': 8, 'chunk_size': 3,
    }
    values.update(overrides)
    return CustomVLAConfig(**values)


def make_batch(config, batch_size=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.rand(batch_size, 3, config.image_size, config.image_size, generator=generator)
    actions = torch.rand(batch_size, config.chunk_size, config.action_dim, generator=generator)
    return pixels, actions * 2 - 1


def train_on_one_batch(model, steps=20):
    """Fit one fixed batch with AdamW and return the loss of every step."""
    pixels, actions = make_batch(model.config)
    return fit_batch(model, pixels, actions, INSTRUCTIONS, steps)


def fit_batch(model, pixels, actions, instructions, steps):
    """Fit these inputs and actions with AdamW for ``steps``; return the loss of every step."""
    tokens, mask = model.encode_instructions(instructions)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = model(pixels, instruction_embeddings=tokens, attention_mask=mask,
                     actions=actions).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CustomVLAModel(tiny_config()).eval()


def test_forward_shapes_and_loss(model):
    pixels, actions = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    assert tokens.shape[:2] == mask.shape and tokens.shape[2] == 16
    out = model(pixels, instruction_embeddings=tokens, attention_mask=mask)
    assert out.predicted_actions.shape == (2, 3, 8)
    assert out.loss is None
    out = model(pixels, instruction_embeddings=tokens, attention_mask=mask, actions=actions)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_input_ids_path_matches_cached_embeddings(model):
    pixels, _ = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    batch = model.tokenize(INSTRUCTIONS)
    via_ids = model(pixels, **batch).predicted_actions
    via_cache = model(pixels, instruction_embeddings=tokens, attention_mask=mask).predicted_actions
    torch.testing.assert_close(via_ids, via_cache)


def test_single_action_accepts_2d_targets():
    model = CustomVLAModel(tiny_config(chunk_size=1, action_dim=2))
    pixels, _ = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    out = model(pixels, instruction_embeddings=tokens, attention_mask=mask,
                actions=torch.zeros(2, 2))
    assert out.predicted_actions.shape == (2, 1, 2)
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize('pooling', ['mean', 'readout'])
def test_proprio_is_required_and_used(pooling):
    model = CustomVLAModel(tiny_config(use_proprio=True, proprio_dim=5, pooling=pooling)).eval()
    pixels, _ = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    with pytest.raises(ValueError, match='proprio'):
        model(pixels, instruction_embeddings=tokens, attention_mask=mask)
    a = model(pixels, instruction_embeddings=tokens, attention_mask=mask,
              proprio=torch.zeros(2, 5)).predicted_actions
    b = model(pixels, instruction_embeddings=tokens, attention_mask=mask,
              proprio=torch.ones(2, 5)).predicted_actions
    assert not torch.allclose(a, b)


def test_action_mask_excludes_entries(model):
    pixels, actions = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    chunk_mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    base = model(pixels, instruction_embeddings=tokens, attention_mask=mask, actions=actions,
                 action_mask=chunk_mask).loss
    corrupted = actions.clone()
    corrupted[~chunk_mask] = 100.0
    again = model(pixels, instruction_embeddings=tokens, attention_mask=mask, actions=corrupted,
                  action_mask=chunk_mask).loss
    torch.testing.assert_close(base, again)
    with pytest.raises(ValueError, match='action_mask'):
        model(pixels, instruction_embeddings=tokens, attention_mask=mask, actions=actions,
              action_mask=torch.ones(5))


@pytest.mark.parametrize('pooling', ['mean', 'readout'])
def test_loss_decreases_on_fixed_batch(pooling):
    torch.manual_seed(0)
    model = CustomVLAModel(tiny_config(pooling=pooling)).train()
    assert all(not p.requires_grad for p in model.language_encoder.parameters())
    losses = train_on_one_batch(model)
    assert losses[-1] < 0.5 * losses[0], losses


def test_conv_backbone_gives_one_token_per_16_pixels_and_learns():
    torch.manual_seed(0)
    config = tiny_config(vision_backbone='conv', pooling='readout')
    model = CustomVLAModel(config).train()
    pixels, actions = make_batch(config)
    assert config.num_patches == 4
    assert model.encode_image(pixels).shape == (2, 4, config.hidden_size)
    losses = train_on_one_batch(model)
    assert losses[-1] < 0.5 * losses[0], losses


def grounding_config(**overrides):
    values = {'vision_backbone': 'conv', 'pooling': 'readout', 'language_film': True,
              'spatial_keypoints': 3, 'subgoal_loss_weight': 0.5}
    values.update(overrides)
    return tiny_config(**values)


def test_film_makes_the_image_features_depend_on_the_instruction():
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config()).eval()
    pixels, _ = make_batch(model.config, batch_size=1)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    context = modeling.mean_instruction_state(tokens, mask)
    first = model.encode_image(pixels, context[:1])
    second = model.encode_image(pixels, context[1:])
    assert not torch.allclose(first, second)
    blind = CustomVLAModel(tiny_config(vision_backbone='conv')).eval()
    with pytest.raises(ValueError, match='film_context'):
        blind.encode_image(pixels, context[:1])
    with pytest.raises(ValueError, match='film_context'):
        model.encode_image(pixels)


def test_mean_instruction_state_ignores_padding():
    states = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert modeling.mean_instruction_state(states, mask).item() == 2.0
    assert modeling.mean_instruction_state(states, None).item() == pytest.approx(104 / 3)


def test_instruction_focus_starts_as_the_mean_of_the_real_tokens():
    torch.manual_seed(0)
    focus = modeling.InstructionFocus(language_size=6, proprio_size=0)
    states = torch.randn(2, 4, 6)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    expected = modeling.mean_instruction_state(states, mask)
    assert torch.allclose(focus(states, mask, None), expected, atol=1e-6)


def test_instruction_focus_reads_the_token_the_proprio_points_at():
    focus = modeling.InstructionFocus(language_size=2, proprio_size=2, key_size=2)
    with torch.no_grad():
        focus.key.weight.copy_(torch.eye(2))
        focus.key.bias.zero_()
        focus.query_from_proprio.weight.copy_(40.0 * torch.eye(2))
        focus.query_from_proprio.bias.zero_()
    grasp_object, place_reference = [1.0, 0.0], [0.0, 1.0]
    states = torch.tensor([[grasp_object, place_reference]] * 2)
    hand_open, hand_closed = [1.0, 0.0], [0.0, 1.0]
    pooled = focus(states, None, torch.tensor([hand_open, hand_closed]))
    assert pooled[0].tolist() == pytest.approx(grasp_object, abs=1e-6)
    assert pooled[1].tolist() == pytest.approx(place_reference, abs=1e-6)
    with pytest.raises(ValueError, match='proprio'):
        focus(states, None, None)


def test_instruction_focus_heads_keep_two_words_apart():
    # Head 0 keys on the first state dimension, head 1 on the second: the concatenation holds
    # each token whole instead of one average of both.
    focus = modeling.InstructionFocus(language_size=2, proprio_size=0, key_size=2, heads=2)
    with torch.no_grad():
        focus.key.weight.copy_(torch.cat([torch.eye(2), torch.eye(2)]))
        focus.key.bias.zero_()
        focus.query.copy_(torch.tensor([40.0, 0.0, 0.0, 40.0]))
    colour, shape = [1.0, 0.0], [0.0, 1.0]
    pooled = focus(torch.tensor([[colour, shape]]), torch.tensor([[True, True]]), None)
    assert pooled.shape == (1, 4)
    assert pooled[0].tolist() == pytest.approx(colour + shape, abs=1e-6)
    one_head = modeling.InstructionFocus(language_size=6, proprio_size=5)
    assert one_head(torch.randn(3, 4, 6), None, torch.randn(3, 5)).shape == (3, 6)
    # One head keeps the parameter shapes of the checkpoints trained before heads existed.
    assert {name: tuple(p.shape) for name, p in one_head.named_parameters()} == {
        'key.weight': (64, 6), 'key.bias': (64,), 'query': (64,),
        'query_from_proprio.weight': (64, 5), 'query_from_proprio.bias': (64,)}


@pytest.mark.parametrize('first_stage', [1, 2])
def test_film_first_stage_leaves_the_earlier_stages_blind_to_the_instruction(first_stage):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(film_first_stage=first_stage)).eval()
    pixels, _ = make_batch(model.config, batch_size=1)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    context = modeling.mean_instruction_state(tokens, mask)
    widths = (32, 64, model.config.vision_hidden_size)
    assert model.vision.film.out_features == 2 * sum(widths[first_stage:])
    normalized = model.pixel_normalizer(pixels)
    first_tokens, _, first_fine = model.vision(normalized, context[:1])
    second_tokens, _, second_fine = model.vision(normalized, context[1:])
    assert not torch.allclose(first_tokens, second_tokens)
    # The stride-4 map is the second stage's output: modulated only from stage 1 on.
    assert torch.allclose(first_fine, second_fine) == (first_stage == 2)


def test_film_heads_widen_the_film_input_and_all_of_them_train():
    torch.manual_seed(0)
    config = grounding_config(film_pooling='attention', film_heads=3, use_proprio=True,
                              proprio_dim=5)
    model = CustomVLAModel(config).train()
    assert model.vision.film.in_features == 3 * config.language_hidden_size
    pixels, actions = make_batch(config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    inputs = {'instruction_embeddings': tokens, 'attention_mask': mask, 'actions': actions}
    model(pixels, **inputs, proprio=torch.randn(2, 5)).loss.backward()
    key_grad = model.instruction_focus.key.weight.grad.view(3, -1, config.language_hidden_size)
    assert all(head.abs().sum() > 0 for head in key_grad)


def test_attention_film_pooling_trains_its_query_from_the_proprio():
    torch.manual_seed(0)
    config = grounding_config(film_pooling='attention', use_proprio=True, proprio_dim=5)
    model = CustomVLAModel(config).train()
    pixels, actions = make_batch(config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    proprio = torch.randn(2, 5)
    inputs = {'instruction_embeddings': tokens, 'attention_mask': mask, 'actions': actions}
    model(pixels, **inputs, proprio=proprio).loss.backward()
    focus = model.instruction_focus
    for parameter in (focus.key.weight, focus.query, focus.query_from_proprio.weight):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    assert CustomVLAModel(grounding_config()).instruction_focus is None


def test_spatial_soft_argmax_finds_a_peak():
    layer = modeling.SpatialSoftArgmax(channels=1, keypoints=1)
    with torch.no_grad():
        layer.heat.weight.fill_(1.0)
        layer.heat.bias.zero_()
    features = torch.zeros(1, 1, 5, 9)
    features[0, 0, 4, 0] = 50.0  # bottom row, leftmost column
    x, y = layer(features)[0].tolist()
    assert x == pytest.approx(-1.0, abs=1e-3) and y == pytest.approx(1.0, abs=1e-3)
    features = torch.zeros(1, 1, 5, 9)  # no peak: the centre
    assert layer(features)[0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def test_subgoal_head_adds_its_weighted_loss_and_learns():
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(dropout=0.0)).train()
    pixels, actions = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    subgoal = torch.linspace(-1, 1, 16).view(2, 8)
    inputs = {'instruction_embeddings': tokens, 'attention_mask': mask, 'actions': actions}
    out = model(pixels, **inputs, subgoal_actions=subgoal)
    expected = 0.5 * (out.predicted_subgoal - subgoal).abs().mean()
    assert out.loss.item() == pytest.approx(out.action_loss.item() + expected.item(), rel=1e-5)
    assert model(pixels, **inputs).loss.item() == pytest.approx(out.action_loss.item())
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        loss = model(pixels, **inputs, subgoal_actions=subgoal).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.subgoal_loss(model(pixels, **inputs).predicted_subgoal, subgoal) < 0.5 * expected
    plain = CustomVLAModel(tiny_config(vision_backbone='conv')).eval()
    assert plain(pixels, instruction_embeddings=tokens, attention_mask=mask).predicted_subgoal \
        is None
    with pytest.raises(ValueError, match='subgoal_loss_weight'):
        plain(pixels, **inputs, subgoal_actions=subgoal)


def test_grounding_aids_are_saved_and_reloaded(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config()).eval()
    pixels, _ = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    expected = model(pixels, instruction_embeddings=tokens, attention_mask=mask)
    model.save_pretrained(tmp_path)
    reloaded = CustomVLAModel.from_pretrained(tmp_path).eval()
    got = reloaded(pixels, instruction_embeddings=tokens, attention_mask=mask)
    torch.testing.assert_close(got.predicted_actions, expected.predicted_actions)
    torch.testing.assert_close(got.predicted_subgoal, expected.predicted_subgoal)


@pytest.mark.parametrize('stride', [8, 4])
def test_grounding_maps_cover_the_grid_of_their_stride_and_reload(stride, tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(grounding_maps=2, grounding_stride=stride)).eval()
    grids = []
    model.grounding.register_forward_hook(lambda module, args, out: grids.append(out[0].shape))
    pixels, _ = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    inputs = {'instruction_embeddings': tokens, 'attention_mask': mask,
              'grounding_targets': torch.tensor([[0.1, -0.2], [0.5, 0.5]]),
              'grounding_target_maps': torch.tensor([0, 1])}
    with torch.no_grad():
        expected = model(pixels, **inputs)
    side = model.config.image_size // stride
    assert grids == [(2, 2, side * side)]
    assert expected.grounding_loss > 0 and expected.grounding_positions.shape == (2, 2, 2)
    maps = expected.grounding_probabilities
    assert maps.shape == (2, 2, side, side)
    torch.testing.assert_close(maps.sum(dim=(-2, -1)), torch.ones(2, 2))
    # The positions are the maps' expected cell centres.
    centres = modeling.grid_centres(side, side)
    torch.testing.assert_close(maps.flatten(2) @ centres, expected.grounding_positions)
    model.save_pretrained(tmp_path)
    reloaded = CustomVLAModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.grounding_stride == stride
    with torch.no_grad():
        got = reloaded(pixels, **inputs)
    torch.testing.assert_close(got.grounding_positions, expected.grounding_positions)
    torch.testing.assert_close(got.grounding_loss, expected.grounding_loss)
    with pytest.raises(ValueError, match='grounding_stride must be one of'):
        grounding_config(grounding_maps=2, grounding_stride=6)


def test_readout_pooling_is_saved_and_reloaded(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(tiny_config(pooling='readout', use_proprio=True, proprio_dim=3,
                                       vision_backbone='conv')).eval()
    assert model.readout_token is not None and model.readout_token.requires_grad
    pixels, _ = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    proprio = torch.rand(2, 3)
    with torch.no_grad():
        expected = model(pixels, instruction_embeddings=tokens, attention_mask=mask,
                         proprio=proprio).predicted_actions
    model.save_pretrained(tmp_path)
    reloaded = CustomVLAModel.from_pretrained(tmp_path)
    assert reloaded.config.pooling == 'readout'
    torch.testing.assert_close(reloaded.readout_token, model.readout_token)
    with torch.no_grad():
        got = reloaded(pixels, instruction_embeddings=tokens, attention_mask=mask,
                       proprio=proprio).predicted_actions
    assert torch.equal(expected, got)


def test_save_and_reload_give_identical_outputs(model, tmp_path):
    pixels, _ = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    with torch.no_grad():
        expected = model(pixels, instruction_embeddings=tokens, attention_mask=mask)
    model.save_pretrained(tmp_path)
    reloaded = CustomVLAModel.from_pretrained(tmp_path)
    assert not reloaded.training
    assert all(not p.requires_grad for p in reloaded.language_encoder.parameters())
    tokens2, mask2 = reloaded.encode_instructions(INSTRUCTIONS)
    assert torch.equal(tokens, tokens2) and torch.equal(mask, mask2)
    with torch.no_grad():
        got = reloaded(pixels, instruction_embeddings=tokens2, attention_mask=mask2)
    assert torch.equal(expected.predicted_actions, got.predicted_actions)


def test_auto_classes_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, CustomVLAConfig) and config.chunk_size == 3
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, CustomVLAModel)
    pixels, _ = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    with torch.no_grad():
        a = model(pixels, instruction_embeddings=tokens, attention_mask=mask).predicted_actions
        b = loaded(pixels, instruction_embeddings=tokens, attention_mask=mask).predicted_actions
    assert torch.equal(a, b)


@pytest.mark.parametrize('overrides, message', [
    ({'hidden_size': 30, 'num_heads': 4}, 'divisible by num_heads'),
    ({'chunk_size': 0}, 'chunk_size'),
    ({'action_dim': 0}, 'action_dim'),
    ({'vision_hidden_size': 30, 'vision_heads': 4}, 'vision_heads'),
    ({'image_size': 30, 'patch_size': 8}, 'multiple of patch_size'),
    ({'language_encoder': 'gpt'}, 'language_encoder'),
    ({'use_proprio': True, 'proprio_dim': 0}, 'proprio_dim'),
    ({'loss_type': 'huber'}, 'loss_type'),
    ({'pooling': 'max'}, 'pooling'),
    ({'vision_backbone': 'resnet'}, 'vision_backbone'),
    ({'vision_backbone': 'conv', 'image_size': 40, 'patch_size': 8}, 'multiple of 16'),
    ({'dropout': 1.0}, 'dropout'),
    ({'language_film': True}, 'need vision_backbone "conv"'),
    ({'spatial_keypoints': 2}, 'need vision_backbone "conv"'),
    ({'vision_backbone': 'conv', 'spatial_keypoints': -1}, 'spatial_keypoints'),
    ({'subgoal_loss_weight': -0.1}, 'subgoal_loss_weight'),
    ({'vision_backbone': 'conv', 'language_film': True, 'film_pooling': 'max'}, 'film_pooling'),
    ({'vision_backbone': 'conv', 'film_pooling': 'attention'}, 'needs language_film'),
    ({'vision_backbone': 'conv', 'language_film': True, 'film_heads': 2}, 'film_heads'),
    ({'vision_backbone': 'conv', 'language_film': True, 'film_first_stage': 3},
     'film_first_stage'),
    ({'vision_backbone': 'conv', 'film_first_stage': 1}, 'needs language_film'),
    ({'vision_backbone': 'conv', 'language_film': True, 'film_pooling': 'attention',
      'film_heads': 0}, 'film_heads'),
    ({'vision_backbone': 'conv', 'grounding_maps': 3, 'grounding_and_maps': 1,
      'grounding_pixel_maps': 2}, 'grounding_pixel_maps'),
    ({'grounding_pixel_width': 0}, 'grounding_pixel_width'),
    ({'vision_backbone': 'conv', 'grounding_maps': 3, 'grounding_and_maps': 2,
      'grounding_pixel_maps': 1, 'grounding_shape_maps': 2}, 'together at most'),
    ({'grounding_shape_width': 0}, 'grounding_shape_width'),
    ({'scene_token_dropout': 1.0}, 'scene_token_dropout must be in'),
    ({'grounding_token_sharpness': 0.0}, 'grounding_token_sharpness'),
    ({'vision_backbone': 'conv', 'scene_token_dropout': 0.5}, 'need grounding_maps'),
    ({'vision_backbone': 'conv', 'grounding_maps': 2, 'fusion_scene_tokens': False},
     'pooling "readout"'),
])
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_default_config_is_the_realtime_one():
    config = CustomVLAConfig()
    assert config.num_patches == 49 and config.language_hidden_size == 384
    assert config.build_vision_config().num_hidden_layers == config.vision_layers


def test_pixel_validation(model):
    tokens, mask = model.encode_instructions(INSTRUCTIONS[:1])
    with pytest.raises(ValueError, match='resize'):
        model(torch.rand(1, 3, 64, 64), instruction_embeddings=tokens, attention_mask=mask)
    with pytest.raises(ValueError, match='pixel_values'):
        model(torch.rand(1, 32, 32, 3), instruction_embeddings=tokens, attention_mask=mask)
    with pytest.raises(ValueError, match='instruction_embeddings or input_ids'):
        model(torch.rand(1, 3, 32, 32))


def test_instruction_cache_hits_and_lru_eviction():
    model = CustomVLAModel(tiny_config(), instruction_cache_size=2)
    calls = []
    original = model.run_language_encoder

    def counting(input_ids, attention_mask):
        calls.append(input_ids.shape[0])
        return original(input_ids, attention_mask)

    model.run_language_encoder = counting
    first, _ = model.encode_instructions(['a', 'b', 'a'])
    assert calls == [2]  # duplicates are encoded once
    again, _ = model.encode_instructions(['b', 'a'])
    assert calls == [2]
    torch.testing.assert_close(again[1, :3], first[0, :3])
    model.encode_instructions(['c'])  # evicts the least recently used ("b")
    assert 'b' not in model.instruction_cache and 'a' in model.instruction_cache
    model.encode_instructions(['b'])
    assert calls == [2, 1, 1]
    with pytest.raises(TypeError):
        model.encode_instructions('a')


def test_instruction_cache_can_be_disabled():
    cache = InstructionCache(max_size=0)
    cache.put('x', torch.zeros(1))
    assert len(cache) == 0
    model = CustomVLAModel(tiny_config(), instruction_cache_size=0)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    assert tokens.shape[0] == 2 and mask[0].all()


def test_vision_pretrained_path(tmp_path):
    config = tiny_config()
    torch.manual_seed(1)
    clip = CLIPVisionModel(config.build_vision_config())
    clip.save_pretrained(tmp_path / 'clip')
    model = CustomVLAModel(tiny_config(vision_pretrained_path=str(tmp_path / 'clip')))
    for name, value in clip.state_dict().items():
        assert torch.equal(model.vision.state_dict()[name], value), name
    with pytest.raises(ValueError, match='hidden_size'):
        CustomVLAModel(tiny_config(vision_hidden_size=64, vision_intermediate_size=128,
                                   vision_pretrained_path=str(tmp_path / 'clip')))


def test_minilm_encoder_states_and_cache():  # ~1 s: the 90 MB weights load from the gt package
    model = CustomVLAModel(tiny_config(language_encoder='minilm'))
    assert model.language_encoder is None
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    assert tokens.shape[-1] == 384 and mask.dtype == torch.bool
    assert not any(key.startswith('_external') for key in model.state_dict())
    misses = model.instruction_cache.misses
    again, _ = model.encode_instructions(INSTRUCTIONS)
    assert model.instruction_cache.misses == misses
    assert torch.equal(tokens, again)
    out = model(torch.rand(2, 3, 32, 32), instruction_embeddings=tokens, attention_mask=mask)
    assert out.predicted_actions.shape == (2, 3, 8)


def two_objects(count, generator, colours, rings=(False, False), size=64, square=8):
    """
    Return images with two objects on grey, each filling one grid cell, and their centres.

    ``colours`` ``(count, 2, 3)`` is the RGB of each image's two objects; an object whose
    ``rings`` entry is True is a ring (a hollow square), else a filled square.  The centres are
    ``(count, 2, 2)``, (x, y) in [-1, 1].
    """
    images = torch.full((count, 3, size, size), 0.5)
    centres = torch.zeros(count, 2, 2)
    for row in range(count):
        cells = torch.randperm((size // square) ** 2, generator=generator)[:2]
        for kind, cell in enumerate(cells.tolist()):
            top, left = divmod(cell, size // square)
            top, left = top * square, left * square
            images[row, :, top:top + square, left:left + square] = (
                colours[row, kind, :, None, None])
            if rings[kind]:
                images[row, :, top + 2:top + square - 2, left + 2:left + square - 2] = 0.5
            centres[row, kind] = torch.tensor([left + square / 2, top + square / 2]) / size
    return images, centres * 2 - 1


RED, BLUE = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])


def coloured_squares(count, generator, size=64, square=8):
    """Return images with a red and a blue square, and each square's centre (x, y) in [-1, 1]."""
    return two_objects(count, generator, torch.stack([RED, BLUE]).expand(count, 2, 3),
                       size=size, square=square)


def named_beats_other(logits, centres, which, cells_per_side=8):
    """Return, per image, whether the named object's cell outscores the other object's."""
    rows = torch.arange(len(which))
    cells = ((centres + 1) / 2 * cells_per_side).floor().long()  # (B, 2 objects, x/y)
    index = cells[..., 1] * cells_per_side + cells[..., 0]
    return logits[rows, index[rows, which]] > logits[rows, index[rows, 1 - which]]


@pytest.mark.parametrize('stride', [8, 4])
def test_grounding_maps_learn_to_find_the_object_the_instruction_names(stride):
    # With the same instruction for both squares this ends near 50 %; with them, above 95 %.
    torch.manual_seed(0)
    config = tiny_config(image_size=64, vision_backbone='conv', pooling='readout',
                         language_film=True, grounding_maps=1, grounding_stride=stride)
    model = CustomVLAModel(config).train()
    names = ['touch the red one', 'touch the blue one']
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    maps = torch.zeros(16, dtype=torch.long)
    for _ in range(100):
        images, centres = coloured_squares(16, generator)
        which = torch.randint(0, 2, (16,), generator=generator)
        tokens, mask = model.encode_instructions([names[i] for i in which.tolist()])
        output = model(images, instruction_embeddings=tokens, attention_mask=mask,
                       grounding_targets=centres[torch.arange(16), which],
                       grounding_target_maps=maps)
        optimizer.zero_grad()
        output.grounding_loss.backward()
        optimizer.step()
    model.eval()
    images, centres = coloured_squares(64, generator)
    which = torch.arange(64) % 2
    tokens, mask = model.encode_instructions([names[i] for i in which.tolist()])
    with torch.no_grad():
        found = model(images, instruction_embeddings=tokens,
                      attention_mask=mask).grounding_positions[:, 0]
    to_named = (found - centres[torch.arange(64), which]).norm(dim=-1)
    to_other = (found - centres[torch.arange(64), 1 - which]).norm(dim=-1)
    assert (to_named < to_other).float().mean() > 0.9, (to_named, to_other)


def test_grounding_loss_scores_the_chosen_map_and_skips_items_without_a_target():
    layer = modeling.GroundingMaps(channels=4, maps=2, hidden_size=8)
    logits = torch.zeros(3, 2, 16)
    logits[:, 0, 5] = 10.0  # map 0 peaks on cell (row 1, column 1) of a 4 x 4 grid
    on_cell = torch.tensor([[-0.25, -0.25]] * 3)  # that cell's centre
    elsewhere = torch.tensor([[0.75, 0.75]] * 3)
    first = torch.tensor([0, 0, -1])
    near = layer.loss(logits, (4, 4), on_cell, first)
    assert near < layer.loss(logits, (4, 4), elsewhere, first)
    # Map 1 is flat: its loss is the same wherever the target is.
    second = torch.tensor([1, 1, 1])
    assert layer.loss(logits, (4, 4), on_cell, second).item() == pytest.approx(
        layer.loss(logits, (4, 4), elsewhere, second).item(), abs=0.2)
    none = layer.loss(logits.requires_grad_(), (4, 4), on_cell, torch.tensor([-1, -1, -1]))
    assert none.item() == 0.0 and none.requires_grad


def test_grounding_loss_over_several_targets_per_item_averages_every_pair():
    layer = modeling.GroundingMaps(channels=4, maps=2, hidden_size=8)
    logits = torch.randn(2, 2, 16)
    targets = torch.tensor([[[-0.25, -0.25], [0.5, 0.5]], [[0.0, 0.75], [-0.5, 0.25]]])
    maps = torch.tensor([[0, 1], [-1, 1]])
    pairs = [layer.loss(logits[item:item + 1], (4, 4), targets[item, slot][None],
                        maps[item, slot][None]) for item, slot in ((0, 0), (0, 1), (1, 1))]
    assert layer.loss(logits, (4, 4), targets, maps).item() == pytest.approx(
        sum(pair.item() for pair in pairs) / 3, rel=1e-5)
    with pytest.raises(ValueError, match=r'\(B,\) or \(B, N\)'):
        layer.loss(logits, (4, 4), targets, maps[None])


def test_grounding_loss_joins_the_training_loss_and_needs_grounding_maps():
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(grounding_maps=2, grounding_loss_weight=0.5)).train()
    pixels, actions = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    inputs = {'instruction_embeddings': tokens, 'attention_mask': mask, 'actions': actions}
    targets = torch.tensor([[0.1, -0.2], [0.5, 0.5]])
    out = model(pixels, **inputs, grounding_targets=targets,
                grounding_target_maps=torch.tensor([0, 1]))
    assert out.grounding_positions.shape == (2, 2, 2)
    assert out.grounding_loss > 0
    assert out.loss.item() == pytest.approx(out.action_loss.item() + out.grounding_loss.item(),
                                            rel=1e-5)
    out.loss.backward()
    assert model.grounding.heat[0].weight.grad.abs().sum() > 0
    assert model.vision.film.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='grounding_target_maps'):
        model(pixels, **inputs, grounding_targets=targets)
    plain = CustomVLAModel(grounding_config()).train()
    assert plain(pixels, **inputs).grounding_positions is None
    with pytest.raises(ValueError, match='grounding_maps > 0'):
        plain(pixels, **inputs, grounding_targets=targets,
              grounding_target_maps=torch.tensor([0, 0]))
    with pytest.raises(ValueError, match='grounding_maps'):
        tiny_config(grounding_maps=1)  # the ViT backbone has no feature grid


def test_grounding_word_queries_let_each_map_take_its_own_word():
    layer = modeling.GroundingMaps(channels=2, maps=2, hidden_size=4, language_size=2,
                                   key_size=2)
    with torch.no_grad():
        layer.heat[-1].weight.zero_()  # no image-only heat: only the words decide
        layer.heat[-1].bias.zero_()
        for linear in (layer.word_keys, layer.word_values):
            linear.weight.copy_(torch.eye(2))
            linear.bias.zero_()
        layer.cell_keys.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        layer.cell_keys.bias.zero_()
        layer.queries.copy_(torch.tensor([[20.0, 0.0], [0.0, 20.0]]))
    grasp_word, place_word = [1.0, 0.0], [0.0, 1.0]
    words = torch.tensor([[grasp_word, place_word, [5.0, 5.0]]])
    mask = torch.tensor([[True, True, False]])  # the padding token must not count
    features = torch.zeros(1, 2, 1, 4)
    features[0, :, 0, 0] = torch.tensor([30.0, 0.0])  # leftmost cell looks like the grasp word
    features[0, :, 0, 3] = torch.tensor([0.0, 30.0])  # rightmost like the place word
    _, positions, _ = layer(features, words, mask)
    assert positions[0, 0, 0].item() == pytest.approx(-0.75, abs=1e-3)
    assert positions[0, 1, 0].item() == pytest.approx(0.75, abs=1e-3)
    with pytest.raises(ValueError, match='words must be given'):
        layer(features)


def test_word_factors_want_every_factor_where_a_plain_sum_takes_the_strongest_one():
    layer = modeling.WordFactorMatch(channels=2, maps=1, factors=2, language_size=2, key_size=2)
    eye = torch.eye(2)
    with torch.no_grad():
        layer.word_keys.weight.copy_(eye)
        layer.word_keys.bias.zero_()
        layer.word_values.weight.copy_(torch.cat([eye, eye]))  # both factors read the word
        layer.word_values.bias.zero_()
        layer.cell_keys.weight.copy_(torch.cat([eye, eye]).view(4, 2, 1, 1))
        layer.cell_keys.bias.zero_()
        layer.queries.copy_(torch.tensor([[[20.0, 0.0], [0.0, 20.0]]]))
    colour_word, shape_word = [1.0, 0.0], [0.0, 1.0]  # "orange", "block"
    words = torch.tensor([[colour_word, shape_word, [9.0, -9.0]]])
    mask = torch.tensor([[True, True, False]])
    # Cells: very orange but no block (the orange cup), orange and a block, a blue block.
    features = torch.tensor([[14.0, 4.0, -4.0], [-4.0, 4.0, 12.0]]).view(1, 2, 1, 3)
    logits = layer(features, words, mask)
    assert logits.shape == (1, 1, 3)
    assert logits[0, 0].argmax().item() == 1
    plain_sum = features.sum(dim=1).flatten()  # one linear match of both words
    assert plain_sum.argmax().item() == 0


def test_and_maps_move_map_zero_to_where_the_last_maps_agree():
    layer = modeling.GroundingMaps(channels=3, maps=3, hidden_size=4, and_maps=2)
    layer.heat = torch.nn.Identity()  # the features are the maps' own logits
    # Map 0 alone is flat; map 1 lights cells 0 and 1 (the named colour), map 2 cells 1 and 2
    # (the named shape).
    own = torch.tensor([[0.0, 0.0, 0.0], [5.0, 5.0, -5.0], [-5.0, 5.0, 5.0]])
    logits, positions, _ = layer(own.view(1, 3, 1, 3))
    assert logits[0, 0].argmax().item() == 1
    assert positions[0, 0, 0].item() == pytest.approx(0.0, abs=0.05)
    torch.testing.assert_close(logits[0, 1:], own[1:])  # the peer maps stay as they were
    plain = modeling.GroundingMaps(channels=3, maps=3, hidden_size=4)
    plain.heat = torch.nn.Identity()
    torch.testing.assert_close(plain(own.view(1, 3, 1, 3))[0][0, 0], own[0])
    with pytest.raises(ValueError, match='and_maps'):
        modeling.GroundingMaps(channels=3, maps=2, hidden_size=4, and_maps=2)


def test_a_sharp_token_stands_on_the_stronger_peak_of_a_split_map():
    # One row of 5 cells; map 0 is split between cell 0 (stronger) and cell 4; map 1 is a
    # peer (AND) map lighting both, which sharpening must leave alone.
    own = torch.tensor([[2.0, -9.0, -9.0, -9.0, 1.0], [3.0, -9.0, -9.0, -9.0, 3.0]])

    def positions(sharpness):
        layer = modeling.GroundingMaps(channels=2, maps=2, hidden_size=4, and_maps=1,
                                       token_sharpness=sharpness)
        layer.heat = torch.nn.Identity()
        logits, positions, _ = layer(own.view(1, 2, 1, 5))
        return logits, positions[0, :, 0]
    soft_logits, soft = positions(1.0)
    sharp_logits, sharp = positions(8.0)
    assert -0.4 < soft[0].item() < 0.0  # between the peaks (cell 0 is at u -0.8, cell 4 +0.8)
    assert sharp[0].item() == pytest.approx(-0.8, abs=0.01)
    assert sharp[1].item() == pytest.approx(soft[1].item()) == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(sharp_logits, soft_logits)  # the maps and their loss unchanged
    with pytest.raises(ValueError, match='token_sharpness'):
        modeling.GroundingMaps(channels=2, maps=2, hidden_size=4, token_sharpness=0.0)


def grounded_training_step(model, target_maps=(0, 1)):
    """Run one training forward and backward with grounding targets; return its inputs."""
    pixels, actions = make_batch(model.config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    out = model(pixels, instruction_embeddings=tokens, attention_mask=mask, actions=actions,
                grounding_targets=torch.zeros(2, 2),
                grounding_target_maps=torch.tensor(target_maps))
    out.loss.backward()
    return pixels, tokens, mask


def assert_reload_keeps_grounding(model, tmp_path, pixels, tokens, mask):
    """Save and reload ``model``; its grounding positions must come back the same."""
    model.eval().save_pretrained(tmp_path)
    reloaded = CustomVLAModel.from_pretrained(tmp_path).eval()
    expected = model(pixels, instruction_embeddings=tokens, attention_mask=mask)
    got = reloaded(pixels, instruction_embeddings=tokens, attention_mask=mask)
    torch.testing.assert_close(got.grounding_positions, expected.grounding_positions)


def test_a_model_with_grounding_word_queries_trains_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(grounding_maps=2,
                                            grounding_word_queries=True)).train()
    pixels, tokens, mask = grounded_training_step(model)
    assert model.grounding.queries.grad.abs().sum() > 0
    assert_reload_keeps_grounding(model, tmp_path, pixels, tokens, mask)
    with pytest.raises(ValueError, match='grounding_word_queries needs grounding_maps'):
        grounding_config(grounding_word_queries=True)


def test_a_model_with_grounding_word_factors_trains_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(grounding_maps=2,
                                            grounding_word_factors=2)).train()
    assert model.grounding.queries is None  # word factors without the single-query match
    pixels, tokens, mask = grounded_training_step(model)
    assert model.grounding.factor_match.queries.grad.abs().sum() > 0
    assert_reload_keeps_grounding(model, tmp_path, pixels, tokens, mask)
    with pytest.raises(ValueError, match='grounding_word_factors'):
        grounding_config(grounding_word_factors=2)


def test_a_model_with_grounding_and_maps_trains_and_checks_the_count(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(grounding_maps=4, grounding_and_maps=2)).train()
    grounded_training_step(model, target_maps=(0, 0))
    # Map 0's loss reaches the peer maps' head through their log-probabilities.
    assert model.grounding.heat[-1].weight.grad[2:].abs().sum() > 0
    with pytest.raises(ValueError, match='grounding_and_maps'):
        grounding_config(grounding_maps=2, grounding_and_maps=2)


def test_scene_token_dropout_leaves_some_items_with_the_grounding_tokens_alone(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(grounding_maps=2, scene_token_dropout=0.5)).train()
    model.save_pretrained(tmp_path)
    alone = CustomVLAModel.from_pretrained(tmp_path, fusion_scene_tokens=False).train()
    assert alone.config.scene_token_dropout == 0.5 and not alone.config.fusion_scene_tokens
    pixels, _ = make_batch(model.config, batch_size=16)
    tokens, mask = model.encode_instructions(INSTRUCTIONS * 8)
    with torch.no_grad():
        dropped = model(pixels, instruction_embeddings=tokens, attention_mask=mask)
        without = alone(pixels, instruction_embeddings=tokens, attention_mask=mask)
        full = model.eval()(pixels, instruction_embeddings=tokens, attention_mask=mask)

    def same(a, b):
        return torch.isclose(a.predicted_actions, b.predicted_actions, atol=1e-5).flatten(1).all(1)
    # Each item either kept its scene tokens or saw the grounding tokens alone; seed 0 has both.
    masked, kept = same(dropped, without), same(dropped, full)
    assert torch.all(masked ^ kept), (masked, kept)
    assert 0 < int(masked.sum()) < 16
    # Evaluation never drops: the full model differs from the grounding tokens alone.
    assert not torch.any(same(full, alone.eval()(pixels, instruction_embeddings=tokens,
                                                 attention_mask=mask)))


def test_pixel_colour_match_reads_each_cell_alone_and_not_the_order_of_its_pixels():
    torch.manual_seed(0)
    match = modeling.PixelColourMatch(maps=2, language_size=6, width=4)
    with torch.no_grad():
        match.queries.normal_()
    words, mask = torch.randn(1, 3, 6), torch.tensor([[True, True, False]])
    pixels = torch.randn(1, 3, 16, 24)
    logits = match(pixels, (2, 3), words, mask)
    assert logits.shape == (1, 2, 6)
    changed = pixels.clone()
    changed[..., 8:, 8:16] = torch.randn(3, 8, 8)  # cell (row 1, column 1) only
    moved = logits != match(changed, (2, 3), words, mask)
    assert moved[:, :, 4].all() and not moved[:, :, [0, 1, 2, 3, 5]].any()
    # Shuffling the pixels inside each cell keeps every logit: a cell holds no shape.
    shuffled = pixels.clone()
    order = torch.randperm(64)
    for top in (0, 8):
        for left in (0, 8, 16):
            cell = shuffled[0, :, top:top + 8, left:left + 8].reshape(3, 64)
            shuffled[0, :, top:top + 8, left:left + 8] = cell[:, order].reshape(3, 8, 8)
    torch.testing.assert_close(match(shuffled, (2, 3), words, mask), logits)
    with pytest.raises(ValueError, match='do not split'):
        match(pixels, (3, 3), words, mask)


def coloured_bars(count, generator, size=64, square=8):
    """Like ``coloured_squares``, but each object is a 2-pixel bar across its cell's middle."""
    images, centres = coloured_squares(count, generator, size, square)
    grey = torch.full((3, 3, square), 0.5)
    for row in range(count):
        for centre in centres[row]:
            left, top = ((centre + 1) / 2 * size - square / 2).round().long().tolist()
            images[row, :, top:top + 3, left:left + square] = grey
            images[row, :, top + 5:top + square, left:left + square] = grey
    return images, centres


def train_word_map(match, training_images, generator, steps=100):
    """
    Train ``match``'s one map (an 8 x 8 grid) to find which of two objects a word names.

    ``training_images(count)`` returns images with two objects and their centres; return
    ``words(which)``, the instructions ("touch the <first/second> one") that name them.
    """
    grid = (8, 8)
    loss_layer = modeling.GroundingMaps(channels=4, maps=1, hidden_size=8)  # for its loss
    filler, object_words = torch.randn(3, 8), torch.randn(2, 8)

    def words(which):
        return torch.stack([torch.cat([filler, object_words[w][None]]) for w in which.tolist()])

    optimizer = torch.optim.AdamW(match.parameters(), lr=3e-3)
    for _ in range(steps):
        images, centres = training_images(16)
        which = torch.randint(0, 2, (16,), generator=generator)
        loss = loss_layer.loss(match(images, grid, words(which)), grid,
                               centres[torch.arange(16), which], torch.zeros(16, dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return words


def test_a_pixel_colour_map_trained_on_squares_finds_the_named_colour_in_a_bar():
    # The map sees one cell at a time, so under the one-cell Gaussian target it cannot be
    # peaked (the target's neighbours look like the rest of the table); what it is for is
    # ranking the named colour above the other one, wherever and whatever shape that is.
    torch.manual_seed(0)
    match = modeling.PixelColourMatch(maps=1, language_size=8)
    generator = torch.Generator().manual_seed(0)
    words = train_word_map(match, lambda count: coloured_squares(count, generator), generator)
    images, centres = coloured_bars(64, generator)
    which = torch.arange(64) % 2
    with torch.no_grad():
        logits = match(images, (8, 8), words(which))[:, 0]
    assert named_beats_other(logits, centres, which).float().mean() > 0.95
    cells = ((centres + 1) / 2 * 8).floor().long()  # (64, 2 objects, x/y) -> grid cells
    index = cells[..., 1] * 8 + cells[..., 0]
    assert (logits.argmax(dim=-1) == index[torch.arange(64), which]).float().mean() > 0.95


def test_a_model_with_grounding_pixel_maps_trains_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(grounding_maps=4, grounding_and_maps=2,
                                            grounding_pixel_maps=1)).train()
    pixels, tokens, mask = grounded_training_step(model, target_maps=(0, 0))
    # Map 2 comes from the pixel path alone; map 0's loss reaches it and map 3's heat.
    heat_grad = model.grounding.heat[-1].weight.grad
    assert heat_grad[2].abs().sum() == 0 and heat_grad[3].abs().sum() > 0
    assert model.grounding.colour_match.queries.grad.abs().sum() > 0
    assert_reload_keeps_grounding(model, tmp_path, pixels, tokens, mask)
    layer = modeling.GroundingMaps(channels=4, maps=3, hidden_size=8, and_maps=1)
    with pytest.raises(ValueError, match='pixel_maps and shape_maps need language_size'):
        modeling.GroundingMaps(channels=4, maps=3, hidden_size=8, and_maps=1, pixel_maps=1)
    with pytest.raises(ValueError, match='pixels must be given'):
        layer(torch.zeros(1, 4, 2, 2), pixels=torch.zeros(1, 3, 16, 16))


def test_scramble_colours_recolours_each_image_but_keeps_its_outlines():
    generator = torch.Generator().manual_seed(0)
    images = torch.full((64, 3, 8, 8), 0.5)
    images[:, 0, 2:6, 2:6] = 1.0  # a red square on grey
    images[:, 1:, 2:6, 2:6] = 0.0
    scrambled = modeling.scramble_colours(images, generator)
    assert scrambled.shape == images.shape
    square = scrambled[:, :, 3, 3]  # (64, 3): the square's colour in every image
    # Pixels of one colour stay one colour (the outline survives) ...
    torch.testing.assert_close(scrambled[:, :, 2:6, 2:6],
                               square[:, :, None, None].expand(-1, -1, 4, 4))
    assert (scrambled[:, :, 0, 0] != square).any(dim=1).all()
    # ... but which channel carries the red differs from image to image.
    brightest = square.argmax(dim=1)
    assert set(brightest.tolist()) == {0, 1, 2}
    again = modeling.scramble_colours(images, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, scrambled)


def shape_map_hits_on_swapped_colours():
    """
    Train a ShapeMatch map on red squares and blue rings; test on blue squares and red rings.

    Return the fraction of test images where the named shape's cell outscores the other's.
    """
    torch.manual_seed(0)
    match = modeling.ShapeMatch(maps=1, language_size=8)
    match.reset_path()
    generator = torch.Generator().manual_seed(0)

    def red_squares_blue_rings(count):
        colours = torch.stack([RED, BLUE]).expand(count, 2, 3)
        return two_objects(count, generator, colours, rings=(False, True))

    words = train_word_map(match, red_squares_blue_rings, generator)
    colours = torch.stack([BLUE, RED]).expand(64, 2, 3)
    images, centres = two_objects(64, generator, colours, rings=(False, True))
    which = torch.arange(64) % 2
    with torch.no_grad():
        logits = match.eval()(images, (8, 8), words(which))[:, 0]
    return named_beats_other(logits, centres, which).float().mean().item()


def test_a_shape_map_finds_a_shape_in_a_colour_it_never_had(monkeypatch):
    # Trained on red squares and blue rings, the shape path still finds the square when it is
    # blue; without the recolouring it learns the colour and picks the red ring instead.
    assert shape_map_hits_on_swapped_colours() > 0.9
    monkeypatch.setattr(modeling, 'scramble_colours', lambda pixels, generator=None: pixels)
    assert shape_map_hits_on_swapped_colours() < 0.2


def test_a_model_with_grounding_shape_maps_trains_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(grounding_config(grounding_maps=4, grounding_and_maps=2,
                                            grounding_pixel_maps=1,
                                            grounding_shape_maps=1)).train()
    pixels, tokens, mask = grounded_training_step(model, target_maps=(0, 0))
    # Maps 2 and 3 come from their own paths; map 0's loss reaches both, not the shared heat.
    heat_grad = model.grounding.heat[-1].weight.grad
    assert heat_grad[2:].abs().sum() == 0 and heat_grad[:1].abs().sum() > 0
    assert model.grounding.colour_match.queries.grad.abs().sum() > 0
    assert model.grounding.shape_match.shape[0].weight.grad.abs().sum() > 0
    assert_reload_keeps_grounding(model, tmp_path, pixels, tokens, mask)
    # At the stride-4 grid each path cell covers 2 x 2 grounding cells.
    fine = CustomVLAModel(grounding_config(grounding_maps=3, grounding_and_maps=1,
                                           grounding_shape_maps=1, grounding_stride=4)).eval()
    out = fine(pixels, instruction_embeddings=tokens, attention_mask=mask)
    assert out.grounding_probabilities.shape[-2:] == (pixels.shape[-2] // 4,) * 2
    with pytest.raises(ValueError, match='together at most and_maps'):
        modeling.GroundingMaps(channels=4, maps=3, hidden_size=8, language_size=6, and_maps=1,
                               pixel_maps=1, shape_maps=1)
