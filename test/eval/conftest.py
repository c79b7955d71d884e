"""Fixtures: the fake env of test/mocks/fake_env.py (loaded by path: pytest runs in importlib mode)."""

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_fake_env():
    name = 'maps_vla_test_fake_env'
    if name in sys.modules:  # both test folders share one copy
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / 'mocks' / 'fake_env.py'
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def fake_env():
    """The fake_env module: FakeEnv, FakeEnvConfig, make_fake_env, ReachExpert, ReachPolicy, StillPolicy."""
    return _load_fake_env()
