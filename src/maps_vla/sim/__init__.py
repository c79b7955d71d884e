"""maps_vla.sim: a headless MuJoCo Franka Panda tabletop (pick-and-place and the GrinningFace-style emoji task).

    env = make_env(EnvConfig(task='emoji', variant='ood_emoji'))
    expert = make_expert(env)
    obs = env.reset(seed=0); expert.reset()
    obs, reward, terminated, truncated, info = env.step(expert.get_action(obs))
"""

from maps_vla.sim.config_env import EnvConfig
from maps_vla.sim.factory import TASK_NAMES, TASK_VARIANTS, make_env, make_expert

__all__ = ['make_env', 'EnvConfig', 'make_expert', 'TASK_NAMES', 'TASK_VARIANTS']
