"""Fixtures shared by the core library's simulation tests."""

import pytest


@pytest.fixture
def small_sim_config():
    """Build the config of a custom VLA small enough for a test to run in the simulation."""
    from humanoid_vla.models import CustomVLAConfig

    def build(**extra):
        return CustomVLAConfig(
            image_size=32, vision_backbone='conv', vision_hidden_size=32, vision_heads=2,
            hidden_size=32, num_heads=4, language_encoder='tiny', tiny_language_hidden_size=16,
            tiny_language_layers=1, action_dim=8, chunk_size=2, **extra)
    return build


@pytest.fixture(scope='module')
def env():
    """One simulation environment (world, IK, grasp assist) per test module."""
    pytest.importorskip('mujoco', reason='MuJoCo is not installed (see requirements.txt)')
    pytest.importorskip('mink', reason='mink is not installed (see requirements.txt)')
    from humanoid_vla.sim import assets
    from humanoid_vla.sim.episode_runner import SimEnvironment
    try:
        environment = SimEnvironment()
    except assets.RobotAssetsNotFoundError as error:
        pytest.skip(str(error))
    yield environment
    environment.close()
