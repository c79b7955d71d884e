"""Shared fixtures. Tests mirror src/maps_vla/ (test/maps, test/model, ...)."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: tiny models run far faster so, above all on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def fake_env():
    """The module test/mocks/fake_env.py (FakeEnv, FakeEnvConfig, make_fake_env, ReachExpert, ReachPolicy,
    StillPolicy), loaded by path because pytest runs in importlib mode."""
    name = 'maps_vla_test_fake_env'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / 'mocks' / 'fake_env.py')
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]
