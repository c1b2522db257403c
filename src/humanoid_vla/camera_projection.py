"""
Pinhole projection between the robot's base frame and normalised image coordinates.

The grounding loss needs to know where in the camera image a base-frame point (the touch
point, the grasp pose) appears.  The head camera is fixed to the torso, whose posture is held,
so one calibration (the camera's pose in ``base_link`` and its vertical field of view) maps
every recorded subgoal to an image position without recording anything new.

Conventions are MuJoCo's (and OpenGL's): the camera looks along its -z axis with +y up.
Normalised image coordinates run from -1 (left edge, top edge) to +1 (right, bottom) over the
image, whatever its resolution, so they survive resizing.  A model that sees only a fixed window
of the frame (``ImageCrop``) works in the window's normalised coordinates: a camera with that
crop projects into them.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Mapping

import numpy as np

_KEYS = ('position', 'quaternion_xyzw', 'fovy_deg')
_OPTIONAL_KEYS = ('aspect', 'crop')


class CameraCalibrationError(ValueError):
    """A camera calibration mapping is missing a key or holds an unusable value."""


def quaternion_xyzw_to_matrix(quaternion: np.ndarray) -> np.ndarray:
    """Return the 3x3 rotation of an xyzw quaternion (normalised first)."""
    x, y, z, w = np.asarray(quaternion, dtype=float) / np.linalg.norm(quaternion)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@dataclass(frozen=True)
class ImageCrop:
    """
    A fixed window of the frame, ``[left, top, right, bottom]`` as fractions of its width/height.

    Cropping the head camera's frame to the table before resizing gives the model more pixels per
    object at the same input size (the table fills less than half of the head camera's frame).
    """

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self) -> None:
        """Check that the window is inside the frame and not empty."""
        values = (self.left, self.top, self.right, self.bottom)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise CameraCalibrationError(f'a crop is four numbers, got {values!r}')
        if not (0.0 <= self.left < self.right <= 1.0 and 0.0 <= self.top < self.bottom <= 1.0):
            raise CameraCalibrationError(
                f'a crop [left, top, right, bottom] needs 0 <= left < right <= 1 and '
                f'0 <= top < bottom <= 1, got {list(values)}')

    @classmethod
    def from_sequence(cls, values: Any) -> ImageCrop:
        """Build from ``[left, top, right, bottom]`` (a config list)."""
        if isinstance(values, (str, bytes)) or not hasattr(values, '__len__') or len(values) != 4:
            raise CameraCalibrationError(
                f'a crop is [left, top, right, bottom] (fractions of the frame), got {values!r}')
        if any(isinstance(v, bool) for v in values):
            raise CameraCalibrationError(f'a crop is four numbers, got {values!r}')
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError) as err:
            raise CameraCalibrationError(f'a crop is four numbers, got {values!r}') from err
        return cls(*numbers)

    def as_list(self) -> list[float]:
        """Return ``[left, top, right, bottom]`` (for configs and JSON)."""
        return [self.left, self.top, self.right, self.bottom]

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Return the window of an ``(H, W, ...)`` frame, its edges rounded to whole pixels."""
        height, width = frame.shape[:2]
        top, bottom = round(self.top * height), round(self.bottom * height)
        left, right = round(self.left * width), round(self.right * width)
        return frame[top:max(bottom, top + 1), left:max(right, left + 1)]

    def to_window(self, uv: np.ndarray) -> np.ndarray:
        """Map frame-normalised ``(..., 2)`` (u, v) to the window's normalised coordinates."""
        centre, half = self.centre_and_half()
        return (np.asarray(uv, dtype=float) - centre) / half

    def to_frame(self, uv: np.ndarray) -> np.ndarray:
        """Map the window's normalised ``(..., 2)`` (u, v) back to the frame's."""
        centre, half = self.centre_and_half()
        return np.asarray(uv, dtype=float) * half + centre

    def centre_and_half(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the window's centre and half size in frame-normalised coordinates."""
        centre = np.array([self.left + self.right - 1.0, self.top + self.bottom - 1.0])
        half = np.array([self.right - self.left, self.bottom - self.top])
        return centre, half


@dataclass(frozen=True)
class PinholeCamera:
    """
    A camera's pose in the robot's base frame and its vertical field of view.

    ``rotation`` holds the camera's x (right), y (up) and z (backwards) axes as columns, in
    base-frame coordinates.  ``aspect`` is width / height of the image.  With a ``crop``,
    image coordinates are those of that window of the frame (what a model given the crop sees).
    """

    position: np.ndarray
    rotation: np.ndarray
    fovy_deg: float
    aspect: float = 1.0
    crop: ImageCrop | None = None

    def __post_init__(self) -> None:
        """Check the shapes and the field of view."""
        object.__setattr__(self, 'position', np.asarray(self.position, dtype=float).reshape(3))
        rotation = np.asarray(self.rotation, dtype=float)
        if rotation.shape != (3, 3) or not np.allclose(rotation.T @ rotation, np.eye(3),
                                                       atol=1e-6):
            raise CameraCalibrationError(f'rotation must be a 3x3 rotation matrix, got {rotation}')
        object.__setattr__(self, 'rotation', rotation)
        if not 0.0 < float(self.fovy_deg) < 180.0:
            raise CameraCalibrationError(f'fovy_deg must be in (0, 180), got {self.fovy_deg}')
        if not float(self.aspect) > 0.0:
            raise CameraCalibrationError(f'aspect must be > 0, got {self.aspect}')

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PinholeCamera:
        """
        Build from ``{position: [x, y, z], quaternion_xyzw: [...], fovy_deg: f}``.

        Optional keys: ``aspect`` (width / height) and ``crop`` (``[left, top, right, bottom]``,
        see ``ImageCrop``).
        """
        if not isinstance(data, Mapping):
            raise CameraCalibrationError(
                f'a camera calibration must be a mapping with keys {_KEYS}, got {data!r}')
        missing = [key for key in _KEYS if key not in data]
        unknown = sorted(set(data) - set(_KEYS) - set(_OPTIONAL_KEYS))
        if missing or unknown:
            raise CameraCalibrationError(
                f'camera calibration keys: missing {missing}, unknown {unknown}; '
                f'expected {_KEYS} (and optionally {_OPTIONAL_KEYS})')
        try:
            position = np.asarray(data['position'], dtype=float).reshape(3)
            quaternion = np.asarray(data['quaternion_xyzw'], dtype=float).reshape(4)
        except (TypeError, ValueError) as err:
            raise CameraCalibrationError(
                f'position must be 3 numbers and quaternion_xyzw 4: {err}') from err
        if not np.linalg.norm(quaternion) > 0:
            raise CameraCalibrationError('quaternion_xyzw must not be zero')
        crop = data.get('crop')
        return cls(position, quaternion_xyzw_to_matrix(quaternion), float(data['fovy_deg']),
                   float(data.get('aspect', 1.0)),
                   None if crop is None else ImageCrop.from_sequence(crop))

    def cropped(self, crop: ImageCrop | None) -> PinholeCamera:
        """Return this camera projecting into ``crop``'s window of its frame (None: the frame)."""
        return PinholeCamera(self.position, self.rotation, self.fovy_deg, self.aspect, crop)

    @property
    def _tan_half_fovy(self) -> float:
        return math.tan(math.radians(self.fovy_deg) / 2.0)

    def project(self, points: np.ndarray) -> np.ndarray:
        """
        Return normalised image coordinates ``(..., 2)`` (u right, v down) of base-frame points.

        Points behind the camera come back as NaN: they have no image position.
        """
        points = np.asarray(points, dtype=float)
        in_camera = (points - self.position) @ self.rotation  # rows: camera-frame coordinates
        depth = -in_camera[..., 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            u = in_camera[..., 0] / depth / (self._tan_half_fovy * self.aspect)
            v = -in_camera[..., 1] / depth / self._tan_half_fovy
        result = np.stack([u, v], axis=-1)
        result[depth <= 0] = np.nan
        return result if self.crop is None else self.crop.to_window(result)

    def ray_to_plane(self, uv: np.ndarray, plane_z: float) -> np.ndarray:
        """
        Return the base-frame point where the ray through image position ``uv`` meets z = plane_z.

        The inverse of :meth:`project` for points on a horizontal plane (the table top).
        """
        uv = np.asarray(uv, dtype=float).reshape(2)
        u, v = uv if self.crop is None else self.crop.to_frame(uv)
        direction_camera = np.array([u * self._tan_half_fovy * self.aspect,
                                     -v * self._tan_half_fovy, -1.0])
        direction = self.rotation @ direction_camera
        if abs(direction[2]) < 1e-9:
            raise ValueError(f'the ray through {uv} is parallel to the plane z = {plane_z}')
        distance = (plane_z - self.position[2]) / direction[2]
        if distance <= 0:
            raise ValueError(f'the plane z = {plane_z} is behind the camera along {uv}')
        return self.position + distance * direction
