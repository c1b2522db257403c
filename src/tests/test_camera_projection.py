"""Pinhole projection between base-frame points and normalised image positions."""

from humanoid_vla.camera_projection import (
    CameraCalibrationError,
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
