"""maps_vla.sim: a headless MuJoCo Franka Panda tabletop (pick-and-place and the GrinningFace-style emoji task).

    env = make_env(EnvConfig(task='emoji', variant='ood_emoji'))
    expert = make_expert(env)
    obs = env.reset(seed=0); expert.reset()
    obs, reward, terminated, truncated, info = env.step(expert.get_action(obs))
"""

import os as _os

# Headless machines (CI, SSH, clusters) have no window system: render offscreen through EGL unless the user
# chose a backend. MuJoCo reads this once, when it is first imported, so it must be set before that.
if 'MUJOCO_GL' not in _os.environ and not _os.environ.get('DISPLAY') and not _os.environ.get('WAYLAND_DISPLAY'):
    _os.environ['MUJOCO_GL'] = 'egl'
    _os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')

from maps_vla.sim.config_env import WIDE_VIEW, CameraView, EnvConfig
from maps_vla.sim.factory import TASK_NAMES, TASK_VARIANTS, make_env, make_expert

__all__ = ['make_env', 'EnvConfig', 'CameraView', 'WIDE_VIEW', 'make_expert', 'TASK_NAMES', 'TASK_VARIANTS']
