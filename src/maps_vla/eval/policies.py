"""Policies for evaluation baselines: an expert wrapped as a `BasePolicy`, and a random-action floor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from maps_vla.policy import ACTIONS, ActionSpec, BasePolicy

__all__ = ['ExpertPolicy', 'BoundExpertPolicy', 'RandomPolicy', 'camera_side']


def camera_side(policy: Any, default: int = 224) -> int:
    """The square camera side (px) to render for `policy` (or for a policy's VLAConfig): the frame size it was trained
    on when its checkpoint records one (`VisionConfig.capture_size`), else its own input size (older checkpoints),
    else `default` (policies without a vision config: the expert, random actions)."""
    vision = getattr(getattr(policy, 'config', policy), 'vision', None)
    if vision is None:
        return default
    return int(getattr(vision, 'capture_size', None) or vision.image_size)


class _Expert(Protocol):
    def reset(self) -> None: ...

    def get_action(self, obs: dict[str, Any]) -> np.ndarray: ...


class ExpertPolicy(BasePolicy):
    """Evaluates an expert (scripted or teleop: `reset()`, `get_action(obs)`) as a chunk-1 policy.

    Args:
        expert: the expert; `get_action` returns one action (action_dim,).
    """

    def __init__(self, expert: _Expert) -> None:
        if not callable(getattr(expert, 'get_action', None)) or not callable(getattr(expert, 'reset', None)):
            raise TypeError(f'expert must have reset() and get_action(obs), got {type(expert).__name__}')
        self.expert = expert

    def infer(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        action = np.asarray(self.expert.get_action(obs), dtype=np.float32)
        if action.ndim != 1:
            raise ValueError(f'expert.get_action must return one action (action_dim,), got shape {action.shape}')
        return {ACTIONS: action[None]}

    def reset(self) -> None:
        self.expert.reset()


class BoundExpertPolicy(ExpertPolicy):
    """A scripted expert that reads privileged state of the env it acts in, rebound to each env it builds.

    Pass `policy.make_env` as `evaluate`'s env_factory: every variant's env gets a fresh expert of its own.

    Args:
        env_factory: env config -> env (e.g. `maps_vla.sim.make_env`).
        expert_factory: env -> expert (e.g. `maps_vla.sim.make_expert`).
    """

    def __init__(self, env_factory: Callable[[Any], Any], expert_factory: Callable[[Any], _Expert]) -> None:
        self._env_factory, self._expert_factory = env_factory, expert_factory
        self.expert = None

    def make_env(self, cfg: Any) -> Any:
        env = self._env_factory(cfg)
        self.expert = self._expert_factory(env)
        return env

    def infer(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        if self.expert is None:
            raise RuntimeError('BoundExpertPolicy has no env yet: build envs through its make_env')
        return super().infer(obs)

    def reset(self) -> None:
        if self.expert is not None:
            self.expert.reset()


class RandomPolicy(BasePolicy):
    """Uniform random actions: the success-rate floor every policy must beat.

    Every dimension but the gripper is drawn from [-scale, scale]; the gripper (if `action_spec` has one) from
    {0, 1}. The generator is seeded once, so a whole evaluation is reproducible.

    Args:
        action_spec: what the env expects (dimension and gripper index).
        seed: numpy Generator seed.
        scale: half-width of the range; the default 0.02 is a 2 cm / 0.02 rad end-effector step.
        chunk_size: actions per `infer` call.
    """

    def __init__(self, action_spec: ActionSpec, seed: int, *, scale: float = 0.02, chunk_size: int = 1) -> None:
        if scale <= 0:
            raise ValueError(f'scale must be > 0, got {scale}')
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        self.action_spec, self.scale, self.chunk_size = action_spec, scale, chunk_size
        self._rng = np.random.default_rng(seed)

    def infer(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        actions = self._rng.uniform(-self.scale, self.scale, (self.chunk_size, self.action_spec.dim))
        if self.action_spec.gripper_index is not None:
            actions[:, self.action_spec.gripper_index] = self._rng.integers(0, 2, self.chunk_size)
        return {ACTIONS: actions.astype(np.float32)}
