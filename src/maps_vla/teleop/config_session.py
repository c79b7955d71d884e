"""`SessionConfig`: how a teleop recording session runs (episode count, instruction, scene seeds, pacing)."""

from __future__ import annotations

import dataclasses

__all__ = ['SessionConfig']


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    """Config of `TeleopSession`."""

    num_episodes: int | None = None  # stop after saving this many episodes (None: until the operator quits)
    instruction: str | None = None  # instruction stored with every episode (None: the task's own, per scene)
    seed: int | None = None  # first scene seed, counting up per scene (None: drawn from OS entropy and logged)
    keep_failures: bool = False  # also save episodes the env ended without success (object fell, time limit)
    realtime: bool = True  # pace the loop at the env's control rate (False: as fast as possible, for tests)

    def __post_init__(self) -> None:
        if self.num_episodes is not None and self.num_episodes < 1:
            raise ValueError(f'SessionConfig.num_episodes must be >= 1 or None, got {self.num_episodes!r}')
        if self.instruction is not None and not self.instruction.strip():
            raise ValueError('SessionConfig.instruction must be None (the task instruction) or non-empty text')
        if self.seed is not None and self.seed < 0:
            raise ValueError(f'SessionConfig.seed must be >= 0 or None, got {self.seed!r}')
