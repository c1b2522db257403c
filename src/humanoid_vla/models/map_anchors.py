"""
Map anchors: the table points under the grounding maps' peaks, added to the hand's x and y.

Session 27 (docs/results): with map 0 or map 1 on the right spot, the hand still came down or
let go several centimetres from it, because the action head reads each map's position only
through a token that the fusion layers mix with every other. Here each map's expected image
position is carried along the head camera's ray to a horizontal plane (a fixed height near
where grasps and releases happen) and normalised like the actions; for every action of the
chunk, learnt gates (zero at the start: the model begins as the one without anchors) say how
much of each anchor to add to the head's x and y. The map says where; the head says how far
from there the hand should be now.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from humanoid_vla.camera_projection import PinholeCamera
import numpy as np
import torch
from torch import nn

ANCHOR_DIMS = 2  # x and y of the hand position: the first two action dimensions


class MapAnchors(nn.Module):
    """Gated offsets ``(B, chunk, 2)`` of the hand's x, y from the maps' table points."""

    def __init__(self, camera: Mapping[str, Any], plane_z: float, maps: int,
                 hidden_size: int, chunk_size: int) -> None:
        super().__init__()
        calibration = PinholeCamera.from_mapping(camera)
        self.maps = maps
        self.chunk_size = chunk_size
        self.plane_z = float(plane_z)
        self.aspect = float(calibration.aspect)
        # Plain numbers, not buffers: they come from the config, and transformers leaves a
        # non-persistent buffer uninitialised when it loads a model built on the meta device.
        self.camera_position = calibration.position.tolist()
        self.camera_rotation = calibration.rotation.tolist()
        self.tan_half_fovy = math.tan(math.radians(calibration.fovy_deg) / 2.0)
        # The maps live in the model's image, the crop's window of the frame: (u, v) * half +
        # centre is the frame position the camera's rays are defined on.
        centre, half = ((np.zeros(2), np.ones(2)) if calibration.crop is None
                        else calibration.crop.centre_and_half())
        self.window_centre, self.window_half = centre.tolist(), half.tolist()
        if calibration.position[2] <= self.plane_z:
            raise ValueError(f'the anchor plane z={plane_z} must lie below the camera '
                             f'(z={calibration.position[2]:.3f})')
        # Raw base-frame x, y -> the actions' normalised units (set from the run's action
        # statistics by the trainer, then saved with the weights).
        self.register_buffer('scale', torch.ones(ANCHOR_DIMS))
        self.register_buffer('shift', torch.zeros(ANCHOR_DIMS))
        # Closed at the start (CustomVLAPreTrainedModel._init_weights zeroes them).
        self.gates = nn.Linear(hidden_size, chunk_size * maps)

    def set_normalization(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Use ``normalised = scale * raw + shift`` for the anchors' x and y."""
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype))
        self.shift.copy_(torch.as_tensor(shift, dtype=self.shift.dtype))

    def table_points(self, positions: torch.Tensor) -> torch.Tensor:
        """
        Return the base-frame ``(B, maps, 2)`` x, y where each map's ray meets the plane.

        ``positions`` are the maps' ``(B, maps, 2)`` normalised image (u, v), as
        ``PinholeCamera.ray_to_plane`` takes them.
        """
        window = positions.float() * torch.tensor(self.window_half, device=positions.device)
        u, v = (window + torch.tensor(self.window_centre, device=positions.device)).unbind(-1)
        direction = torch.stack([u * self.tan_half_fovy * self.aspect,
                                 -v * self.tan_half_fovy, -torch.ones_like(u)], dim=-1)
        rotation = torch.tensor(self.camera_rotation, device=u.device)
        position = torch.tensor(self.camera_position, device=u.device)
        direction = direction @ rotation.T
        # Rays at or above the horizon never meet the plane: hold them just below it.
        down = direction[..., 2].clamp(max=-1e-3)
        distance = (self.plane_z - position[2]) / down
        return position[:2] + distance[..., None] * direction[..., :2]

    def forward(self, pooled: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Return the offsets ``(B, chunk, 2)`` to add to the predicted x, y (normalised)."""
        anchors = self.table_points(positions.detach()) * self.scale + self.shift
        gates = self.gates(pooled).float().view(-1, self.chunk_size, self.maps)
        return (gates @ anchors).to(pooled.dtype)
