"""Fixtures shared by the core library's simulation tests."""

import pytest


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
