"""image_to_rgb8 honours encoding, step and byte order, and refuses malformed buffers."""

from humanoid_vla.image_conversion import (
    decode_compressed, image_to_rgb8, ImageConversionError, rgb8_to_buffer)
import numpy as np
import pytest

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def test_rgb8_round_trip_is_bit_identical():
    data, step = rgb8_to_buffer(RGB)
    assert np.array_equal(image_to_rgb8(data, 5, 7, 'rgb8', step), RGB)


def test_bgr8_and_bgra8_reorder_channels():
    data, step = rgb8_to_buffer(RGB, 'bgr8')
    assert np.array_equal(image_to_rgb8(data, 5, 7, 'bgr8', step), RGB)
    bgra = np.concatenate([RGB[:, :, ::-1], np.full((5, 7, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(image_to_rgb8(bgra.tobytes(), 5, 7, 'bgra8', 28), RGB)


def test_padded_rows_are_ignored():
    padded = np.zeros((5, 7 * 3 + 4), np.uint8)
    padded[:, :21] = RGB.reshape(5, 21)
    assert np.array_equal(image_to_rgb8(padded.tobytes(), 5, 7, 'rgb8', 25), RGB)


def test_mono_is_replicated_to_three_channels():
    mono = RGB[:, :, 0]
    out = image_to_rgb8(mono.tobytes(), 5, 7, 'mono8', 7)
    assert out.shape == (5, 7, 3) and np.array_equal(out[:, :, 2], mono)


@pytest.mark.parametrize('bigendian', [False, True])
def test_sixteen_bit_respects_byte_order(bigendian):
    values = RGB.astype(np.uint16) * 256 + 17
    data = values.astype('>u2' if bigendian else '<u2').tobytes()
    out = image_to_rgb8(data, 5, 7, 'rgb16', 7 * 6, is_bigendian=bigendian)
    assert np.array_equal(out, RGB)


@pytest.mark.parametrize('kwargs, message', [
    ({'encoding': 'yuv422'}, 'unsupported image encoding'),
    ({'height': 0}, 'no pixels'),
    ({'step': 20}, 'shorter than one row'),
    ({'height': 6}, 'height x step'),
])
def test_malformed_buffers_raise_clear_errors(kwargs, message):
    args = {'data': RGB.tobytes(), 'height': 5, 'width': 7, 'encoding': 'rgb8', 'step': 21}
    args.update(kwargs)
    with pytest.raises(ImageConversionError, match=message):
        image_to_rgb8(**args)


def test_compressed_png_decodes_to_rgb():
    cv2 = pytest.importorskip('cv2')
    ok, png = cv2.imencode('.png', RGB[:, :, ::-1])
    assert ok
    assert np.array_equal(decode_compressed(png.tobytes(), 'png'), RGB)
    with pytest.raises(ImageConversionError):
        decode_compressed(b'not an image')
