"""Tests of the classified (binned) action head: targets, read-out, and a model that uses it."""

from humanoid_vla.models import CustomVLAConfig, CustomVLAModel
from humanoid_vla.models.action_bins import ActionBins
import pytest
import torch

from .test_custom_vla_model import fit_batch, INSTRUCTIONS, make_batch, tiny_config


def test_two_hot_targets_give_the_value_back_and_clamp_beyond_the_range():
    bins = ActionBins(9, 1.0)  # centres -1, -0.75, ..., 1
    values = torch.tensor([-1.0, -0.3, 0.0, 0.6, 1.0, 2.5, -7.0])
    target = bins.two_hot(values)
    assert target.shape == (7, 9)
    torch.testing.assert_close(target.sum(-1), torch.ones(7))
    assert int((target > 0).sum(-1).max()) <= 2
    expectation = (target * bins.centres(target)).sum(-1)
    torch.testing.assert_close(expectation, torch.tensor([-1.0, -0.3, 0.0, 0.6, 1.0, 1.0, -1.0]))


def test_decode_returns_one_mode_of_a_split_distribution_not_their_mean():
    bins = ActionBins(33, 1.0)
    two_modes = 0.45 * bins.two_hot(torch.tensor(-0.6)) + 0.55 * bins.two_hot(torch.tensor(0.7))
    value = bins.decode(two_modes.log())
    assert value.item() == pytest.approx(0.7, abs=1e-5)
    assert bins.decode(bins.two_hot(torch.tensor(0.123)).clamp_min(1e-9).log()).item() == \
        pytest.approx(0.123, abs=1e-3)


def test_cross_entropy_is_lowest_at_the_target():
    bins = ActionBins(17, 1.0)
    values = torch.tensor([0.3])
    right = bins.two_hot(values).clamp_min(1e-6).log()
    wrong = bins.two_hot(torch.tensor([-0.5])).clamp_min(1e-6).log()
    assert bins.loss(right, values).item() < bins.loss(wrong, values).item()


@pytest.mark.parametrize('count, half_range', [(1, 1.0), (8, 0.0)])
def test_bins_refuse_a_degenerate_layout(count, half_range):
    with pytest.raises(ValueError, match='at least 2 bins'):
        ActionBins(count, half_range)


@pytest.mark.parametrize('overrides, message', [
    ({'action_bins': 1}, 'action_bins'), ({'action_bins': -4}, 'action_bins'),
    ({'action_bins': 16, 'action_bin_range': 0.0}, 'action_bin_range'),
    ({'action_bins': 16, 'action_bin_readout': 'median'}, 'action_bin_readout'),
    ({'action_binned_dims': 2}, 'needs action_bins'),
    ({'action_bins': 16, 'action_binned_dims': 99}, 'action_binned_dims'),
    ({'action_bins': 16, 'action_binned_dims': -1}, 'action_binned_dims'),
])
def test_config_refuses_bad_bin_settings(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def fit_split_demonstrations(config: CustomVLAConfig, steps: int = 150) -> torch.Tensor:
    """
    Train on one input whose demonstrations disagree (-0.8 or +0.8, 40 / 60), return the action.

    The same image and instruction are shown with both answers, as when look-alike scenes put
    the object on either side of the reference.
    """
    torch.manual_seed(0)
    model = CustomVLAModel(config)
    pixels, _ = make_batch(config, batch_size=1)
    answers = torch.tensor([-0.8] * 4 + [0.8] * 6).view(10, 1, 1)
    actions = answers.expand(10, config.chunk_size, config.action_dim)
    fit_batch(model, pixels.expand(10, -1, -1, -1), actions, INSTRUCTIONS[:1] * 10, steps)
    model.eval()
    tokens, mask = model.encode_instructions(INSTRUCTIONS[:1])
    with torch.no_grad():
        return model(pixels, instruction_embeddings=tokens,
                     attention_mask=mask).predicted_actions


def test_binned_head_learns_one_mode_where_mse_regression_averages_them():
    binned = fit_split_demonstrations(tiny_config(action_bins=32, chunk_size=2, action_dim=3))
    regressed = fit_split_demonstrations(tiny_config(loss_type='mse', chunk_size=2, action_dim=3))
    assert binned.shape == regressed.shape == (1, 2, 3)
    torch.testing.assert_close(binned, torch.full_like(binned, 0.8), atol=0.05, rtol=0)
    assert regressed.abs().max().item() < 0.4  # near the mean, 0.16: on neither side


def reloaded(model: CustomVLAModel, path, pixels: torch.Tensor,
             predicted: torch.Tensor) -> CustomVLAConfig:
    """Save and load ``model``; check it predicts ``predicted`` again; return its config."""
    model.save_pretrained(path)
    loaded = CustomVLAModel.from_pretrained(path)
    tokens, mask = loaded.encode_instructions(INSTRUCTIONS)
    with torch.no_grad():
        again = loaded(pixels, instruction_embeddings=tokens, attention_mask=mask)
    assert torch.equal(predicted, again.predicted_actions)
    return loaded.config


def test_binned_model_reports_cross_entropy_loss_and_l1_error_and_round_trips(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(action_bins=16)
    model = CustomVLAModel(config).eval()
    assert model.action_head[-1].out_features == config.chunk_size * config.action_dim * 16
    pixels, actions = make_batch(config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    with torch.no_grad():
        out = model(pixels, instruction_embeddings=tokens, attention_mask=mask, actions=actions)
    assert out.predicted_actions.shape == (2, config.chunk_size, config.action_dim)
    assert out.predicted_actions.abs().max().item() <= config.action_bin_range + 1e-6
    # Near-uniform logits at initialisation: the cross-entropy is about log(16).
    assert out.action_loss.item() == pytest.approx(torch.log(torch.tensor(16.0)).item(), rel=0.1)
    l1 = (out.predicted_actions - actions).abs().mean()
    assert out.action_error.item() == pytest.approx(l1.item(), rel=1e-5)
    assert reloaded(model, tmp_path, pixels, out.predicted_actions).action_bins == 16


def test_mean_readout_is_the_expectation_over_all_bins():
    bins = ActionBins(33, 1.0, readout='mean')
    two_modes = 0.45 * bins.two_hot(torch.tensor(-0.6)) + 0.55 * bins.two_hot(torch.tensor(0.7))
    assert bins.decode(two_modes.log()).item() == pytest.approx(0.45 * -0.6 + 0.55 * 0.7, abs=1e-5)
    with pytest.raises(ValueError, match='readout'):
        ActionBins(33, 1.0, readout='median')


def test_partly_binned_head_classifies_the_leading_entries_and_regresses_the_rest():
    config = tiny_config(action_bins=32, action_binned_dims=2, chunk_size=2, action_dim=3,
                         loss_type='mse')
    assert config.classified_action_dims == 2
    assert CustomVLAModel(config).action_head[-1].out_features == 2 * (2 * 32 + 1)
    predicted = fit_split_demonstrations(config)
    assert predicted.shape == (1, 2, 3)
    # The classified x, y pick the likelier side; the regressed entry settles at the mean.
    torch.testing.assert_close(predicted[..., :2], torch.full((1, 2, 2), 0.8), atol=0.05,
                               rtol=0)
    torch.testing.assert_close(predicted[..., 2], torch.full((1, 2), 0.16), atol=0.1, rtol=0)


def test_partly_binned_loss_is_cross_entropy_then_l1_and_round_trips(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(action_bins=16, action_binned_dims=1)
    model = CustomVLAModel(config).eval()
    pixels, actions = make_batch(config)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    heads = []
    model.action_head.register_forward_hook(lambda module, inputs, output: heads.append(output))
    with torch.no_grad():
        out = model(pixels, instruction_embeddings=tokens, attention_mask=mask, actions=actions)
    logits = heads[0].view(2, config.chunk_size, -1)[..., :16].unsqueeze(-2)
    expected = torch.cat([model.action_bins.loss(logits, actions[..., :1]),
                          (out.predicted_actions - actions)[..., 1:].abs()], dim=-1).mean()
    assert out.action_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert reloaded(model, tmp_path, pixels, out.predicted_actions).action_binned_dims == 1
