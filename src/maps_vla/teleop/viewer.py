"""Live view for teleop: the camera images side by side with a status line, in an OpenCV window.

Only where a window can open: with a display and an OpenCV built with GUI support (opencv-python, not the
-headless wheel). Elsewhere (SSH without X forwarding, CI) `LiveView.open` returns None and teleop runs blind.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from maps_vla.teleop.keyboard import decode_keys

__all__ = ['LiveView', 'compose_view']

logger = logging.getLogger(__name__)

_WINDOW = 'maps-vla teleop'
_BAR = 28  # status bar height in pixels


def compose_view(images: Sequence[np.ndarray], status: str, height: int = 320) -> np.ndarray:
    """Camera images scaled to `height` rows, side by side, above a black status bar.

    Args:
        images: RGB uint8 (H, W, 3) frames.
        status: one line of text.
        height: rows per image in the view.

    Returns:
        RGB uint8 (height + 28, sum of scaled widths, 3).

    Raises:
        ValueError: no images.
    """
    if not images:
        raise ValueError('compose_view needs at least one image')
    scaled = [cv2.resize(np.ascontiguousarray(im), (max(1, round(im.shape[1] * height / im.shape[0])), height),
                         interpolation=cv2.INTER_NEAREST) for im in images]
    row = np.concatenate(scaled, axis=1)
    bar = np.zeros((_BAR, row.shape[1], 3), np.uint8)
    cv2.putText(bar, status, (6, _BAR - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([row, bar], axis=0)


class LiveView:
    """An OpenCV window; build it with `LiveView.open()`.

    Args:
        on_keys: called with the key names typed into the window (e.g. a `QueueKeySource.push`), so keyboard
            teleop also works while the window has the focus.
        height: rows per camera image in the window.
    """

    def __init__(self, on_keys: Callable[..., None] | None = None, height: int = 320) -> None:
        self.on_keys = on_keys
        self.height = height

    @classmethod
    def open(cls, on_keys: Callable[..., None] | None = None, height: int = 320) -> LiveView | None:
        """A view, or None (logged) when no window can be shown here."""
        if sys.platform.startswith('linux') and not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
            logger.info('no display: live view off')
            return None
        try:
            cv2.namedWindow(_WINDOW, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            logger.info('this OpenCV has no GUI support (opencv-python-headless?): live view off')
            return None
        return cls(on_keys, height)

    def show(self, images: Sequence[np.ndarray], status: str) -> None:
        """Draw one frame and pass on any key typed into the window."""
        cv2.imshow(_WINDOW, cv2.cvtColor(compose_view(images, status, self.height), cv2.COLOR_RGB2BGR))
        code = cv2.waitKey(1)
        if code >= 0 and self.on_keys is not None:
            keys = decode_keys(chr(code & 0xFF))
            if keys:
                self.on_keys(*keys)

    def close(self) -> None:
        try:
            cv2.destroyWindow(_WINDOW)
        except cv2.error:  # already closed by the user
            pass
