"""Shared fixtures. Tests mirror src/maps_vla/ (test/maps, test/model, ...)."""

import os

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')
