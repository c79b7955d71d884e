"""Python `logging` records of maps_vla -> another logger API (rclpy's under ROS), at their severity.

The ROS nodes run maps_vla's plain classes (safety, policy runner, episode runner, reset sequence), which log with
`logging`. A ROS process configures no Python handler, so without this their INFO lines (an episode's outcome, what
the runner waits for) were dropped and their warnings and errors (a lost policy, a failed reset) reached the console
through Python's last-resort handler as bare text: no severity, time or source, outside the ROS log configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ['ForwardHandler', 'forward_logging']


class ForwardHandler(logging.Handler):
    """Hands each record to `get_logger(record.name)` as debug / info / warning / error / fatal (text + traceback)."""

    def __init__(self, get_logger: Callable[[str], Any]) -> None:
        super().__init__()
        self._get_logger = get_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelno
            method = ('fatal' if level >= logging.CRITICAL else 'error' if level >= logging.ERROR else
                      'warning' if level >= logging.WARNING else 'info' if level >= logging.INFO else 'debug')
            getattr(self._get_logger(record.name), method)(self.format(record))
        except Exception:  # a logging failure must never break the caller
            self.handleError(record)


def forward_logging(get_logger: Callable[[str], Any], name: str = 'maps_vla',
                    level: int = logging.INFO) -> Callable[[], None]:
    """Forward logger `name` (and its children) at `level` and above; returns a function that undoes it.

    The logger stops propagating meanwhile, so that a root handler (if any) does not print each line twice.
    """
    logger = logging.getLogger(name)
    handler = ForwardHandler(get_logger)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    return undo
