"""`make_env` and `make_expert`: build a sim environment or its scripted expert from a config or an env."""

from __future__ import annotations

from maps_vla.registry import Registry
from maps_vla.sim.config_env import EnvConfig
from maps_vla.sim.env import FrankaEnv
from maps_vla.sim.expert import PickPlaceExpert
from maps_vla.sim.tasks import TASKS

__all__ = ['make_env', 'make_expert', 'EXPERTS', 'TASK_NAMES', 'TASK_VARIANTS']

TASK_NAMES = tuple(TASKS.names())
TASK_VARIANTS = {name: TASKS.get(name).variants for name in TASK_NAMES}  # task -> ('train', held-out variants...)

# task name -> scripted expert class (constructed with the env)
EXPERTS: Registry[type[PickPlaceExpert]] = Registry('sim expert')
for _task in ('pick_place', 'emoji'):
    EXPERTS.register(_task)(PickPlaceExpert)


def make_env(cfg: EnvConfig | None = None) -> FrankaEnv:
    """Build the environment described by `cfg` (default: `EnvConfig()`, pick-and-place, train variant).

    Raises:
        ValueError: for an unknown task or variant (the config validates itself), or a robot model that lacks
            the expected joints/site.
        FileNotFoundError: for a missing robot MJCF or emoji font.
    """
    return FrankaEnv(EnvConfig() if cfg is None else cfg)


def make_expert(env: FrankaEnv) -> PickPlaceExpert:
    """The scripted expert of `env`'s task; it has `reset()` and `get_action(obs) -> (action_dim,) float32`."""
    return EXPERTS.get(env.cfg.task)(env)
