"""The maps' table points reach the hand's x and y through gates that start closed."""

from humanoid_vla.camera_projection import PinholeCamera
from humanoid_vla.models import CustomVLAConfig, CustomVLAModel
from humanoid_vla.models.map_anchors import MapAnchors
import numpy as np
import pytest
import torch

# The simulation's head camera in base_link (config/train_sim_touch_pick.yaml).
HEAD_CAMERA = {'position': [0.16768, 0.0, 0.43775],
               'quaternion_xyzw': [0.162314, -0.162314, -0.688225, 0.688225], 'fovy_deg': 70.0}
INSTRUCTIONS = ['touch the red cup', 'put the blue block on the plate']


def anchored_config(**overrides) -> CustomVLAConfig:
    values = {'image_size': 32, 'vision_backbone': 'conv', 'vision_hidden_size': 32,
              'vision_heads': 2, 'hidden_size': 32, 'num_heads': 4, 'language_encoder': 'tiny',
              'tiny_language_hidden_size': 16, 'tiny_language_layers': 1, 'action_dim': 8,
              'chunk_size': 2, 'pooling': 'readout', 'language_film': True,
              'grounding_maps': 2, 'dropout': 0.0, 'map_anchors': True,
              'map_anchor_camera': HEAD_CAMERA}
    values.update(overrides)
    return CustomVLAConfig(**values)


def inputs(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.rand(2, 3, 32, 32, generator=generator)
    tokens, mask = model.encode_instructions(INSTRUCTIONS)
    return {'pixel_values': pixels, 'instruction_embeddings': tokens, 'attention_mask': mask}


def test_table_points_are_where_the_camera_ray_meets_the_plane():
    anchors = MapAnchors(HEAD_CAMERA, -0.05, maps=2, hidden_size=8, chunk_size=1)
    positions = torch.tensor([[[0.1, 0.3], [-0.4, 0.6]], [[0.0, 0.0], [0.7, -0.2]]])
    camera = PinholeCamera.from_mapping(HEAD_CAMERA)
    expected = [[camera.ray_to_plane(uv, -0.05)[:2] for uv in item.numpy()] for item in positions]
    np.testing.assert_allclose(anchors.table_points(positions).numpy(), expected, atol=1e-5)


def test_a_new_anchored_model_acts_as_the_same_weights_without_anchors():
    torch.manual_seed(0)
    anchored = CustomVLAModel(anchored_config()).eval()
    plain = CustomVLAModel(anchored_config(map_anchors=False)).eval()
    missing, unexpected = plain.load_state_dict(anchored.state_dict(), strict=False)
    assert not missing and all(name.startswith('map_anchors.') for name in unexpected)
    batch = inputs(anchored)
    torch.testing.assert_close(anchored(**batch).predicted_actions,
                               plain(**batch).predicted_actions)


def test_open_gates_add_the_normalised_anchor_to_x_and_y_only():
    torch.manual_seed(0)
    model = CustomVLAModel(anchored_config()).eval()
    batch = inputs(model)
    closed = model(**batch)
    anchors = model.map_anchors
    anchors.set_normalization(torch.tensor([10.0, 5.0]), torch.tensor([-3.0, 0.5]))
    with torch.no_grad():
        anchors.gates.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]))  # action 0: map 0, 1: map 1
    opened = model(**batch)
    points = anchors.table_points(closed.grounding_positions)
    normalised = points * torch.tensor([10.0, 5.0]) + torch.tensor([-3.0, 0.5])
    moved = opened.predicted_actions - closed.predicted_actions
    torch.testing.assert_close(moved[:, 0, :2], normalised[:, 0])
    torch.testing.assert_close(moved[:, 1, :2], normalised[:, 1])
    assert torch.all(moved[..., 2:] == 0)


def test_the_gates_learn_and_the_normalisation_is_saved(tmp_path):
    torch.manual_seed(0)
    model = CustomVLAModel(anchored_config()).train()
    model.map_anchors.set_normalization(torch.tensor([9.0, 6.0]), torch.tensor([-2.9, 0.8]))
    batch = inputs(model)
    actions = torch.rand(2, 2, 8) * 2 - 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(5):
        loss = model(**batch, actions=actions).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.map_anchors.gates.weight.abs().sum() > 0  # the action loss reaches the gates
    model.eval().save_pretrained(tmp_path)
    reloaded = CustomVLAModel.from_pretrained(tmp_path).eval()
    assert reloaded.map_anchors.scale.tolist() == pytest.approx([9.0, 6.0])
    torch.testing.assert_close(reloaded(**batch).predicted_actions,
                               model(**batch).predicted_actions)


@pytest.mark.parametrize('overrides', [{'grounding_maps': 0}, {'map_anchor_camera': None},
                                       {'action_bins': 16}])
def test_anchors_need_maps_a_camera_and_a_regressed_head(overrides):
    with pytest.raises(ValueError, match='map_anchors need'):
        anchored_config(**overrides)


def test_a_plane_above_the_camera_is_refused():
    with pytest.raises(ValueError, match='below the camera'):
        MapAnchors(HEAD_CAMERA, 0.5, maps=2, hidden_size=8, chunk_size=1)


def test_with_a_crop_the_maps_positions_are_in_its_window():
    cropped = {**HEAD_CAMERA, 'crop': [0.275, 0.35, 1.0, 0.85]}
    anchors = MapAnchors(cropped, -0.05, maps=2, hidden_size=8, chunk_size=1)
    positions = torch.tensor([[[0.1, 0.3], [-0.4, 0.6]], [[-1.0, -1.0], [1.0, 1.0]]])
    camera = PinholeCamera.from_mapping(cropped)
    expected = [[camera.ray_to_plane(uv, -0.05)[:2] for uv in item.numpy()] for item in positions]
    np.testing.assert_allclose(anchors.table_points(positions).numpy(), expected, atol=1e-5)
    uncropped = MapAnchors(HEAD_CAMERA, -0.05, maps=2, hidden_size=8, chunk_size=1)
    assert not np.allclose(uncropped.table_points(positions).numpy(), expected, atol=1e-2)
