"""Checkpoint folders of a training run: `<out>/checkpoints/step_XXXXXXX/{state,policy}`, written atomically.

`state/` is accelerate's full training state (model, optimizer with SPD anchors, LR schedule, RNGs and the
trainer's own counters); `policy/` is a deployable `save_pretrained` folder. A folder only gets its final name
once complete, so a crash mid-save leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

__all__ = ['checkpoint_dir', 'latest_checkpoint', 'commit_checkpoint', 'prune_checkpoints']

logger = logging.getLogger(__name__)

_PATTERN = re.compile(r'^step_(\d{7})$')


def checkpoint_dir(out_dir: str | os.PathLike, step: int) -> Path:
    return Path(out_dir) / 'checkpoints' / f'step_{step:07d}'


def _completed(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    root = Path(out_dir) / 'checkpoints'
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _PATTERN.match(p.name))]
    return sorted(found)


def latest_checkpoint(out_dir: str | os.PathLike) -> tuple[int, Path] | None:
    """(step, folder) of the newest complete checkpoint, or None."""
    found = _completed(out_dir)
    return found[-1] if found else None


def commit_checkpoint(staging: Path, final: Path) -> None:
    """Give a fully written staging folder its final name (replacing an older one of the same step)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    logger.info('checkpoint saved: %s', final)


def prune_checkpoints(out_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (and stale staging folders)."""
    for _, path in _completed(out_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    root = Path(out_dir) / 'checkpoints'
    for stale in root.glob('*.tmp') if root.is_dir() else ():
        shutil.rmtree(stale, ignore_errors=True)
