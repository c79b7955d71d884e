"""A tiny deterministic env with the maps_vla.sim API, for data and eval tests (no MuJoCo).

A point moves in 3-D by the first three action dims (clipped to `max_delta` per step) towards a target drawn from
the reset seed; success when it is within `tolerance`. The state holds the position, the target and the gripper
command, so a policy can succeed from observations alone. Cameras show a smooth gradient with a bright square
at the point's position (video-friendly, deterministic).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from maps_vla.policy import ACTIONS, EE_DELTA_ACTION, OBS_IMAGE_PREFIX, OBS_STATE, TASK, BasePolicy

THIRD = OBS_IMAGE_PREFIX + 'third_person'
WRIST = OBS_IMAGE_PREFIX + 'wrist'


@dataclasses.dataclass(frozen=True)
class FakeEnvConfig:
    instruction: str = 'reach the red target'  # env.instruction and obs['task']
    image_size: tuple[int, int] = (32, 48)  # camera (H, W)
    target_range: float = 0.1  # targets uniform in [-r, r]^3
    max_delta: float = 0.02  # per-step motion clip
    tolerance: float = 0.01  # success distance
    max_steps: int = 40  # truncation


class FakeEnv:
    def __init__(self, cfg: FakeEnvConfig = FakeEnvConfig()) -> None:
        self.cfg = cfg
        self.action_spec = EE_DELTA_ACTION
        self.control_hz = EE_DELTA_ACTION.control_hz
        self.instruction = cfg.instruction
        h, w = cfg.image_size
        self.features = {
            THIRD: {'dtype': 'video', 'shape': (h, w, 3), 'names': ['height', 'width', 'channels']},
            WRIST: {'dtype': 'video', 'shape': (h, w, 3), 'names': ['height', 'width', 'channels']},
            OBS_STATE: {'dtype': 'float32', 'shape': (7,), 'names': ['x', 'y', 'z', 'tx', 'ty', 'tz', 'gripper']},
            'action': {'dtype': 'float32', 'shape': (7,), 'names': list(EE_DELTA_ACTION.names)},
        }
        self.pos = np.zeros(3)
        self.target = np.zeros(3)
        self.gripper = 0.0
        self.steps = 0
        self.closed = False

    def _image(self, offset: int) -> np.ndarray:
        h, w = self.cfg.image_size
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 60 + offset)], -1).astype(np.uint8)
        r = self.cfg.target_range
        cy = int((self.pos[0] + r) / (2 * r) * (h - 6))
        cx = int((self.pos[1] + r) / (2 * r) * (w - 6))
        img[max(cy, 0):max(cy, 0) + 6, max(cx, 0):max(cx, 0) + 6] = (230, 40, 40)
        return img

    def _obs(self) -> dict:
        state = np.concatenate([self.pos, self.target, [self.gripper]]).astype(np.float32)
        return {THIRD: self._image(0), WRIST: self._image(80), OBS_STATE: state, TASK: self.instruction}

    def reset(self, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        self.target = rng.uniform(-self.cfg.target_range, self.cfg.target_range, 3)
        self.pos = np.zeros(3)
        self.gripper = 0.0
        self.steps = 0
        return self._obs()

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        assert action.shape == (7,), action.shape
        self.pos = self.pos + np.clip(action[:3], -self.cfg.max_delta, self.cfg.max_delta)
        self.gripper = float(action[6])
        self.steps += 1
        dist = float(np.linalg.norm(self.pos - self.target))
        success = dist < self.cfg.tolerance
        truncated = self.steps >= self.cfg.max_steps and not success
        return self._obs(), -dist, success, truncated, {'success': success}

    def close(self) -> None:
        self.closed = True


def make_fake_env(cfg: FakeEnvConfig) -> FakeEnv:
    return FakeEnv(cfg)


def _towards(obs: dict, max_delta: float) -> np.ndarray:
    state = obs[OBS_STATE]
    action = np.zeros(7, dtype=np.float32)
    action[:3] = np.clip(state[3:6] - state[:3], -max_delta, max_delta)
    return action


class ReachExpert:
    """Scripted expert: reset() / get_action(obs)."""

    def __init__(self, max_delta: float = 0.02) -> None:
        self.max_delta = max_delta
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def get_action(self, obs: dict) -> np.ndarray:
        return _towards(obs, self.max_delta)


class ReachPolicy(BasePolicy):
    """Always succeeds: a chunk of `chunk` actions that step straight to the target (open-loop safe)."""

    def __init__(self, chunk: int = 1, max_delta: float = 0.02) -> None:
        self.chunk, self.max_delta = chunk, max_delta
        self.calls = 0

    def infer(self, obs: dict) -> dict:
        self.calls += 1
        state = obs[OBS_STATE].astype(np.float64)
        pos, target = state[:3].copy(), state[3:6]
        actions = np.zeros((self.chunk, 7), dtype=np.float32)
        for i in range(self.chunk):
            actions[i, :3] = np.clip(target - pos, -self.max_delta, self.max_delta)
            pos += actions[i, :3]
        return {ACTIONS: actions}


class StillPolicy(BasePolicy):
    """Never succeeds: does not move."""

    def __init__(self, chunk: int = 1) -> None:
        self.chunk = chunk
        self.resets = 0

    def infer(self, obs: dict) -> dict:
        return {ACTIONS: np.zeros((self.chunk, 7), dtype=np.float32)}

    def reset(self) -> None:
        self.resets += 1
