"""Pinhole projection between base-frame points and normalised image positions."""

from humanoid_vla.camera_projection import (
    CameraCalibrationError,
    ImageCrop,
    PinholeCamera,
    quaternion_xyzw_to_matrix,
)
import numpy as np
import pytest

# A camera 1 m above the origin looking straight down: its -z axis is the base frame's -z,
# its +y (image up) the base frame's +x, so image right is the base frame's -y.
DOWN = PinholeCamera(position=[0.0, 0.0, 1.0],
                     rotation=np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
                     fovy_deg=90.0)


def test_the_point_below_the_camera_is_the_image_centre_and_edges_follow_the_fov():
    assert DOWN.project([0.0, 0.0, 0.0]).tolist() == pytest.approx([0.0, 0.0])
    # 90 degrees of view: 1 m below, the image spans 1 m either side of the centre.
    assert DOWN.project([1.0, 0.0, 0.0]).tolist() == pytest.approx([0.0, -1.0])  # top edge
    assert DOWN.project([0.0, -0.5, 0.0]).tolist() == pytest.approx([0.5, 0.0])  # right half
    assert DOWN.project([0.0, -0.5, 0.5]).tolist() == pytest.approx([1.0, 0.0])  # nearer: wider


def test_points_behind_the_camera_have_no_image_position():
    projected = DOWN.project(np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 0.5]]))
    assert np.isnan(projected[0]).all() and np.isfinite(projected[1]).all()


def test_ray_to_plane_inverts_project_on_the_plane():
    rng = np.random.default_rng(0)
    camera = PinholeCamera(position=[0.17, 0.0, 0.44],
                           rotation=quaternion_xyzw_to_matrix([0.16, -0.16, -0.69, 0.69]),
                           fovy_deg=70.0)
    points = np.column_stack([rng.uniform(0.3, 0.5, 20), rng.uniform(-0.3, 0.2, 20),
                              np.full(20, -0.05)])
    for point in points:
        back = camera.ray_to_plane(camera.project(point), plane_z=-0.05)
        assert back == pytest.approx(point, abs=1e-9)
    with pytest.raises(ValueError, match='behind the camera'):
        DOWN.ray_to_plane([0.0, 0.0], plane_z=2.0)


def test_quaternion_matrix_is_a_rotation_and_identity_maps_to_identity():
    assert quaternion_xyzw_to_matrix([0, 0, 0, 2.0]) == pytest.approx(np.eye(3))
    turn = quaternion_xyzw_to_matrix([0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    assert turn @ np.array([1.0, 0, 0]) == pytest.approx([0.0, 1.0, 0.0])


def test_calibration_mappings_are_checked():
    camera = PinholeCamera.from_mapping(
        {'position': [0, 0, 1], 'quaternion_xyzw': [0, 0, 0, 1], 'fovy_deg': 60})
    assert camera.fovy_deg == 60.0
    with pytest.raises(CameraCalibrationError, match='missing'):
        PinholeCamera.from_mapping({'position': [0, 0, 1], 'fovy_deg': 60})
    with pytest.raises(CameraCalibrationError, match='unknown'):
        PinholeCamera.from_mapping({'position': [0, 0, 1], 'quaternion_xyzw': [0, 0, 0, 1],
                                    'fovy_deg': 60, 'fov': 1})
    with pytest.raises(CameraCalibrationError, match='fovy_deg'):
        PinholeCamera.from_mapping({'position': [0, 0, 1], 'quaternion_xyzw': [0, 0, 0, 1],
                                    'fovy_deg': 0})
    with pytest.raises(CameraCalibrationError, match='3 numbers'):
        PinholeCamera.from_mapping({'position': [0, 1], 'quaternion_xyzw': [0, 0, 0, 1],
                                    'fovy_deg': 60})
    with pytest.raises(CameraCalibrationError, match='rotation'):
        PinholeCamera([0, 0, 0], np.ones((3, 3)), 60.0)


# A window of the frame (left, top, right, bottom): the right three quarters, the middle half.
TABLE_WINDOW = ImageCrop(0.25, 0.25, 1.0, 0.75)


def test_a_crop_maps_its_corners_to_the_window_corners_and_back():
    corners = np.array([[-0.5, -0.5], [1.0, 0.5], [0.25, 0.0]])  # frame-normalised
    window = TABLE_WINDOW.to_window(corners)
    assert window == pytest.approx(np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))
    assert TABLE_WINDOW.to_frame(window) == pytest.approx(corners)


def test_a_cropped_camera_projects_into_the_window_and_its_rays_invert_that():
    cropped = DOWN.cropped(TABLE_WINDOW)
    point = np.array([0.2, -0.4, 0.0])
    assert cropped.project(point) == pytest.approx(TABLE_WINDOW.to_window(DOWN.project(point)))
    assert cropped.ray_to_plane(cropped.project(point), plane_z=0.0) == pytest.approx(point)
    assert DOWN.cropped(None).project(point) == pytest.approx(DOWN.project(point))


def test_a_crop_cuts_whole_pixels_out_of_a_frame():
    frame = np.arange(8 * 12).reshape(8, 12)
    window = TABLE_WINDOW.apply(frame)  # rows 2..6, columns 3..12
    assert window.shape == (4, 9) and window[0, 0] == frame[2, 3]
    assert window[-1, -1] == frame[5, 11]


@pytest.mark.parametrize('values, match', [
    ([0.5, 0.0, 0.5, 1.0], 'left < right'),
    ([0.0, 0.0, 1.2, 1.0], 'right <= 1'),
    ([0.0, 0.0, 1.0], r'\[left, top, right, bottom\]'),
    ('0 0 1 1', r'\[left, top, right, bottom\]'),
    ([0.0, True, 1.0, 1.0], 'four numbers'),
    ([0.0, 'top', 1.0, 1.0], 'four numbers'),
])
def test_bad_crops_are_refused(values, match):
    with pytest.raises(CameraCalibrationError, match=match):
        ImageCrop.from_sequence(values)


def test_a_calibration_mapping_may_carry_a_crop():
    mapping = {'position': [0, 0, 1], 'quaternion_xyzw': [0, 0, 0, 1], 'fovy_deg': 60}
    camera = PinholeCamera.from_mapping({**mapping, 'crop': [0.25, 0.25, 1, 0.75]})
    assert camera.crop == TABLE_WINDOW
    assert PinholeCamera.from_mapping(mapping).crop is None
