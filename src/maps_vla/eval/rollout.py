"""Run one episode of a policy in an env: action chunks executed open-loop, or blended as the runtime smoother does."""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from typing import Any

import numpy as np

from maps_vla.control.chunk import ActionChunk
from maps_vla.control.smoothing import (ChunkSmoother, HoldMode, Interpolation, SmoothingMethod, SmootherConfig,
                                       check_smoothing)
from maps_vla.policy import ACTIONS, OBS_IMAGE_PREFIX, BasePolicy

__all__ = ['Outcome', 'EpisodeResult', 'rollout', 'step_smoother']

logger = logging.getLogger(__name__)

_DEFAULT_VIDEO_KEY = OBS_IMAGE_PREFIX + 'third_person'


class Outcome(enum.Enum):
    """How an episode ended."""

    SUCCESS = 'success'  # info['success'] became true
    FAILURE = 'failure'  # the env terminated without success
    TIMEOUT = 'timeout'  # max_steps reached or the env truncated


@dataclasses.dataclass
class EpisodeResult:
    """One rollout."""

    seed: int  # env.reset seed
    outcome: Outcome  # how it ended
    steps: int  # env steps taken
    reward: float  # sum of rewards
    inferences: int  # policy.infer calls
    infer_seconds: float  # total wall time inside policy.infer
    instruction: str  # env.instruction
    frames: np.ndarray | None = None  # uint8 (steps + 1, H, W, 3) of the video camera when recorded
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # the last step's info (e.g. placed_card)

    @property
    def success(self) -> bool:
        return self.outcome is Outcome.SUCCESS


def step_smoother(env: Any, method: str) -> ChunkSmoother:
    """The runtime's chunk smoother (`method`: 'temporal_ensemble', 'crossfade' or 'none') ticking once per env step.

    Time runs in env steps (dt = 1), so a chunk's action i is read exactly at step stamp + i. No interpolation
    (one command per action), no rate limits, no hold while a chunk covers the step; the gripper is thresholded.
    """
    spec = env.action_spec
    return ChunkSmoother(SmootherConfig(
        method=SmoothingMethod(method), interpolation=Interpolation.STEP, control_hz=1.0, blend_window=2.0,
        hold_after=1e9, hold_mode=HoldMode.ZERO if spec.kind == 'ee_delta' else HoldMode.KEEP,
        gripper_index=spec.gripper_index))


def rollout(env: Any, policy: BasePolicy, seed: int, max_steps: int, *, execute_steps: int | None = None,
            smoothing: str | None = None, record_video: bool = False, video_key: str | None = None) -> EpisodeResult:
    """Reset `env` with `seed` and run `policy` until success, termination, truncation or `max_steps`.

    Each `infer` returns a chunk (chunk, action_dim). Without `smoothing`, its first `execute_steps` actions (all
    when None) are sent without looking at the new observations, then the policy is asked again. With `smoothing`
    (a `SmoothingMethod` value), the policy is asked every `execute_steps` steps (1 when None) and each step sends
    the runtime smoother's blend of the chunks that cover it (`step_smoother`): 'temporal_ensemble' is ACT's
    inference. The episode stops at the first step whose info['success'] is true.

    Args:
        env: follows the maps_vla.sim env API (reset(seed), step(action), action_spec, instruction).
        policy: a BasePolicy; reset() is called first.
        seed: env seed.
        max_steps: cap on env steps.
        execute_steps: actions executed per chunk (>= 1), None for the whole chunk (1 with `smoothing`).
        smoothing: None, or how overlapping chunks are blended: 'temporal_ensemble', 'crossfade' or 'none'.
        record_video: keep the frames of `video_key` (reset observation plus one per step).
        video_key: camera to record; default 'observation.images.third_person', else the first camera.

    Returns:
        EpisodeResult.

    Raises:
        ValueError: bad max_steps / execute_steps / smoothing, or the policy returns no 'actions' or ones of the
            wrong shape.
        KeyError: `video_key` is not in the observations.
    """
    if max_steps < 1:
        raise ValueError(f'max_steps must be >= 1, got {max_steps}')
    if execute_steps is not None and execute_steps < 1:
        raise ValueError(f'execute_steps must be >= 1 or None, got {execute_steps}')
    check_smoothing(smoothing, 'smoothing')
    action_dim = env.action_spec.dim
    policy.reset()
    obs = env.reset(seed)
    if record_video and video_key is None:
        cameras = sorted(k for k in obs if k.startswith(OBS_IMAGE_PREFIX))
        if not cameras:
            raise KeyError(f'record_video needs a camera observation; observation keys: {sorted(obs)}')
        video_key = _DEFAULT_VIDEO_KEY if _DEFAULT_VIDEO_KEY in cameras else cameras[0]
    frames = [np.asarray(obs[video_key]).copy()] if record_video else []
    steps, reward, inferences, infer_seconds, info = 0, 0.0, 0, 0.0, {}
    outcome = Outcome.TIMEOUT
    smoother = step_smoother(env, smoothing) if smoothing is not None else None
    infer_every = execute_steps or (1 if smoother is not None else None)
    queue: list[np.ndarray] = []
    while steps < max_steps:
        if (not queue) if smoother is None else steps % infer_every == 0:
            start = time.perf_counter()
            output = policy.infer(obs)
            infer_seconds += time.perf_counter() - start
            if ACTIONS not in output:
                raise ValueError(f'policy.infer must return {{{ACTIONS!r}: (chunk, action_dim)}}, '
                                 f'got keys {sorted(output)}')
            actions = np.asarray(output[ACTIONS], dtype=np.float32)
            inferences += 1
            if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] != action_dim:
                raise ValueError(f'policy returned actions of shape {actions.shape}; expected (chunk, {action_dim})')
            if smoother is None:
                queue = list(actions[:execute_steps])
            else:
                smoother.on_chunk(ActionChunk(stamp=float(steps), actions=actions, dt=1.0))
        if smoother is None:
            action = queue.pop(0)
        else:
            action = smoother.tick(float(steps)).command.astype(np.float32)  # a chunk arrived at step 0
        obs, r, terminated, truncated, info = env.step(action)
        steps += 1
        reward += float(r)
        if record_video:
            frames.append(np.asarray(obs[video_key]).copy())
        if info.get('success', False):
            outcome = Outcome.SUCCESS
            break
        if terminated:
            outcome = Outcome.FAILURE
            break
        if truncated:
            outcome = Outcome.TIMEOUT
            break
    logger.debug('seed %d: %s after %d steps, %d inferences', seed, outcome.value, steps, inferences)
    return EpisodeResult(seed=int(seed), outcome=outcome, steps=steps, reward=reward, inferences=inferences,
                         infer_seconds=infer_seconds, instruction=str(env.instruction),
                         frames=np.stack(frames) if record_video else None, info=dict(info))
