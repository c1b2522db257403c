"""
Turn raw camera buffers (the fields of a sensor_msgs/Image) into RGB uint8 arrays.

Every node converts images with this one function, so a camera with an odd encoding, a padded row
stride or big-endian 16-bit data is handled the same way everywhere. It takes plain fields rather
than a message so that it stays free of ROS and can be tested without a graph.
"""

from typing import Optional

import numpy as np

# encoding -> (channels, dtype, channel order to RGB)
_ENCODINGS = {
    'rgb8': (3, np.uint8, (0, 1, 2)),
    'bgr8': (3, np.uint8, (2, 1, 0)),
    'rgba8': (4, np.uint8, (0, 1, 2)),
    'bgra8': (4, np.uint8, (2, 1, 0)),
    'mono8': (1, np.uint8, (0, 0, 0)),
    '8uc1': (1, np.uint8, (0, 0, 0)),
    '8uc3': (3, np.uint8, (2, 1, 0)),  # OpenCV's default channel order is BGR.
    'mono16': (1, np.uint16, (0, 0, 0)),
    '16uc1': (1, np.uint16, (0, 0, 0)),
    'rgb16': (3, np.uint16, (0, 1, 2)),
    'bgr16': (3, np.uint16, (2, 1, 0)),
}

SUPPORTED_ENCODINGS = tuple(sorted(_ENCODINGS))


class ImageConversionError(ValueError):
    """A camera buffer that cannot be read as the image its header describes."""


def image_to_rgb8(data: bytes | bytearray | memoryview | np.ndarray, height: int, width: int,
                  encoding: str, step: int, is_bigendian: bool = False) -> np.ndarray:
    """
    Return the image as a (height, width, 3) uint8 RGB array (a copy).

    Honours the row stride (``step`` may include padding), the byte order of 16-bit encodings
    (scaled to 8 bits by their top byte) and the channel order. Raises ImageConversionError for an
    unknown encoding, a zero size, a step shorter than a row, or data not matching height x step.
    """
    key = encoding.lower()
    if key not in _ENCODINGS:
        supported = ', '.join(SUPPORTED_ENCODINGS)
        raise ImageConversionError(
            f'unsupported image encoding {encoding!r}; supported: {supported}')
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'image has no pixels ({width}x{height})')
    channels, dtype, order = _ENCODINGS[key]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is shorter than one row of {width} {encoding} pixels '
            f'({row_bytes} bytes)')
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else \
        data.reshape(-1).view(np.uint8)
    if buffer.size != height * step:
        raise ImageConversionError(
            f'data has {buffer.size} bytes but height x step is {height} x {step} = '
            f'{height * step}')
    rows = buffer.reshape(height, step)[:, :row_bytes]
    typed = np.dtype(dtype).newbyteorder('>' if is_bigendian else '<')
    pixels = np.ascontiguousarray(rows).view(typed).reshape(height, width, channels)
    if itemsize == 2:
        pixels = (pixels >> 8).astype(np.uint8)
    return np.ascontiguousarray(pixels[:, :, list(order)], dtype=np.uint8)


def rgb8_to_buffer(image: np.ndarray, encoding: str = 'rgb8') -> tuple[bytes, int]:
    """Return (data, step) for publishing an (H, W, 3) uint8 RGB image as rgb8 or bgr8."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageConversionError(
            f'expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}')
    if encoding not in ('rgb8', 'bgr8'):
        raise ImageConversionError(f'can publish rgb8 or bgr8, not {encoding!r}')
    pixels = image if encoding == 'rgb8' else image[:, :, ::-1]
    return np.ascontiguousarray(pixels).tobytes(), image.shape[1] * 3


def decode_compressed(data: bytes, format_hint: Optional[str] = None) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage payload (JPEG/PNG) to an RGB uint8 array."""
    try:
        import cv2
    except ImportError as error:  # pragma: no cover - opencv ships with rosbags-image here
        raise ImageConversionError('decoding compressed images needs opencv') from error
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageConversionError(f'cannot decode compressed image (format {format_hint!r})')
    return np.ascontiguousarray(decoded[:, :, ::-1])
