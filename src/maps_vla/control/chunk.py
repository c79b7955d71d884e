"""The action chunk passed from the policy runner to the smoother (and through `action_chunk` JointTrajectory)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ['ActionChunk']


@dataclasses.dataclass(frozen=True, eq=False)
class ActionChunk:
    """K actions on a uniform time grid that starts at the observation they were computed from.

    Action i is meant for time `stamp + i * dt`, so a consumer at time `now` starts at index (now - stamp) / dt.

    Attributes:
        stamp: observation time in seconds (the header.stamp of the `action_chunk` message).
        actions: float64 (K, A), un-normalized, in the units of the policy's ActionSpec.
        dt: seconds between consecutive actions (1 / ActionSpec.control_hz).
        names: one name per action dimension (JointTrajectory.joint_names); empty when unknown.
    """

    stamp: float
    actions: np.ndarray
    dt: float
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        actions = np.asarray(self.actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] < 1:
            raise ValueError(f'ActionChunk.actions must have shape (K>=1, A>=1), got {actions.shape}')
        if not np.all(np.isfinite(actions)):
            bad = np.argwhere(~np.isfinite(actions))
            raise ValueError(f'ActionChunk.actions must be finite; {len(bad)} value(s) are not, the first at '
                             f'(step, dim) {tuple(int(i) for i in bad[0])}: {actions[tuple(bad[0])]!r}')
        if not math.isfinite(self.stamp):
            raise ValueError(f'ActionChunk.stamp must be finite, got {self.stamp!r}')
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f'ActionChunk.dt must be a finite number > 0, got {self.dt!r}')
        if self.names and len(self.names) != actions.shape[1]:
            raise ValueError(f'ActionChunk.names has {len(self.names)} entries for {actions.shape[1]} action dims')
        actions.setflags(write=False)
        object.__setattr__(self, 'actions', actions)
        object.__setattr__(self, 'names', tuple(self.names))

    @property
    def horizon(self) -> int:
        """K, the number of actions."""
        return self.actions.shape[0]

    @property
    def dim(self) -> int:
        """A, the action dimension."""
        return self.actions.shape[1]

    @property
    def end(self) -> float:
        """The time at which the last action's step ends (stamp + K * dt)."""
        return self.stamp + self.horizon * self.dt
