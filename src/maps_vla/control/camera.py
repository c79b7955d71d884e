"""Camera ingestion: any RGB frame -> the policy's resolution, stamp kept; plus an OpenCV VideoCapture source.

`CameraConfig` is flat on purpose: it backs the camera node's ROS parameters one to one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

__all__ = ['CameraConfig', 'CameraFrame', 'CameraIngest', 'preprocess_frame', 'VideoCaptureSource']


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    """Which cameras feed the policy and at what resolution."""

    names: tuple[str, ...] = ('third_person',)  # 1-2 camera names; the policy sees OBS_IMAGE_PREFIX + name
    topics: tuple[str, ...] = ()  # one topic per name; empty -> 'camera/<name>/image_raw'
    compressed: bool = False  # subscribe to sensor_msgs/CompressedImage on '<topic>/compressed'
    width: int = 224  # policy input width in pixels
    height: int = 224  # policy input height in pixels
    center_crop: bool = True  # crop the centre to width:height before resizing (False: stretch)

    def __post_init__(self) -> None:
        if not 1 <= len(self.names) <= 2:
            raise ValueError(f'CameraConfig.names must hold 1 or 2 camera names, got {list(self.names)}')
        if len(set(self.names)) != len(self.names) or not all(self.names):
            raise ValueError(f'CameraConfig.names must be distinct and non-empty, got {list(self.names)}')
        if self.topics and len(self.topics) != len(self.names):
            raise ValueError(f'CameraConfig.topics needs one topic per name ({len(self.names)}), '
                             f'got {list(self.topics)}')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'CameraConfig width/height must be > 0, got {self.width}x{self.height}')

    def topic(self, name: str) -> str:
        """The image topic of camera `name` (with '/compressed' appended when `compressed`)."""
        if name not in self.names:
            raise ValueError(f'Unknown camera {name!r}; configured: {list(self.names)}')
        base = self.topics[self.names.index(name)] if self.topics else f'camera/{name}/image_raw'
        return f'{base}/compressed' if self.compressed else base


class CameraFrame(NamedTuple):
    """A preprocessed frame: RGB uint8 (height, width, 3) and its capture time in seconds."""

    name: str
    image: np.ndarray
    stamp: float


def preprocess_frame(frame: np.ndarray, width: int = 224, height: int = 224, center_crop: bool = True) -> np.ndarray:
    """Centre-crop `frame` to the width:height aspect and resize it with INTER_AREA.

    Args:
        frame: uint8 (H, W, 3) RGB, (H, W, 4) RGBA (alpha dropped) or (H, W) grey (replicated to RGB).

    Returns:
        A new contiguous uint8 (height, width, 3) RGB array.

    Raises:
        TypeError: a dtype other than uint8.
        ValueError: any other shape, or an empty frame.
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise TypeError(f'A camera frame must be a uint8 numpy array, got {getattr(frame, "dtype", type(frame))}')
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = np.ascontiguousarray(frame[:, :, :3])
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f'A camera frame must be (H, W, 3) RGB, (H, W, 4) or (H, W), got {frame.shape}')
    h, w = frame.shape[:2]
    if center_crop:
        if w * height > h * width:  # too wide: keep the full height
            crop_w = max(1, round(h * width / height))
            x0 = (w - crop_w) // 2
            frame = frame[:, x0:x0 + crop_w]
        elif w * height < h * width:  # too tall: keep the full width
            crop_h = max(1, round(w * height / width))
            y0 = (h - crop_h) // 2
            frame = frame[y0:y0 + crop_h]
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame)
    return cv2.resize(np.ascontiguousarray(frame), (width, height), interpolation=cv2.INTER_AREA)


class CameraIngest:
    """Keeps the latest preprocessed frame of each configured camera.

    Args:
        cfg: the cameras and the target resolution.
    """

    def __init__(self, cfg: CameraConfig | None = None) -> None:
        self.cfg = cfg or CameraConfig()
        self._latest: dict[str, CameraFrame] = {}

    def on_image(self, name: str, frame: np.ndarray, stamp: float) -> CameraFrame:
        """Preprocess one RGB frame of camera `name` taken at `stamp` seconds; returns and keeps it.

        Raises:
            ValueError: unknown camera, non-finite stamp, or a frame `preprocess_frame` rejects.
            TypeError: a frame that is not uint8.
        """
        if name not in self.cfg.names:
            raise ValueError(f'Unknown camera {name!r}; configured: {list(self.cfg.names)}')
        if not math.isfinite(stamp):
            raise ValueError(f'Camera {name!r} frame stamp must be finite, got {stamp!r}')
        image = preprocess_frame(frame, self.cfg.width, self.cfg.height, self.cfg.center_crop)
        out = CameraFrame(name, image, float(stamp))
        self._latest[name] = out
        return out

    def latest(self, name: str) -> CameraFrame | None:
        """The newest frame of camera `name`, or None before the first one."""
        return self._latest.get(name)


class VideoCaptureSource:
    """Frames from an OpenCV `VideoCapture`: a device index (a webcam) or a video file path.

    Stamps are the position in the file for files (seconds since its start) and `clock()` for devices.

    Args:
        source: device index, or path of a video file.
        clock: wall clock for device stamps (default `time.time`).

    Raises:
        FileNotFoundError: a path that does not exist.
        RuntimeError: OpenCV cannot open the source.
    """

    def __init__(self, source: int | str | Path, clock: Callable[[], float] = time.time) -> None:
        self._is_file = not isinstance(source, int)
        if self._is_file and not Path(source).is_file():
            raise FileNotFoundError(f'Video file {str(source)!r} does not exist')
        self.source = source
        self._clock = clock
        self._cap = cv2.VideoCapture(str(source) if self._is_file else source)
        if not self._cap.isOpened():
            self._cap.release()
            raise RuntimeError(f'OpenCV cannot open video source {source!r}')

    @property
    def fps(self) -> float:
        """Frame rate OpenCV reports (0 when unknown)."""
        return float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def read(self) -> tuple[np.ndarray, float] | None:
        """The next frame as RGB uint8 (H, W, 3) and its stamp, or None at the end or on a read error."""
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        # After a read, POS_MSEC is the position of the frame just decoded.
        stamp = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0 if self._is_file else self._clock()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stamp

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        while (item := self.read()) is not None:
            yield item

    def close(self) -> None:
        """Release the capture."""
        self._cap.release()

    def __enter__(self) -> VideoCaptureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
