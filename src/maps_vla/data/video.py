"""Camera frames <-> mp4 through PyAV: a streaming encoder, frame-exact decoding, and PSNR.

Frames are encoded with presentation time stamps pts = frame_index in a 1/fps time base, so frame i of an episode
is the frame shown at i / fps; decoding maps each frame back to its index by rounding time * fps, which is how
random access (`read_video_frames`) finds a frame after a seek.
"""

from __future__ import annotations

import dataclasses
import fractions
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

__all__ = ['VideoConfig', 'VideoEncoder', 'read_video', 'read_video_frames', 'psnr']

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """How camera frames are encoded. The default is LeRobot-compatible H.264; see `lossless()` for exact frames."""

    codec: str = 'libx264'  # an FFmpeg encoder PyAV has here: libx264, libx264rgb, mpeg4, libsvtav1, ...
    pix_fmt: str = 'yuv420p'  # yuv420p plays everywhere; yuv444p keeps chroma; rgb24 with libx264rgb
    crf: int | None = 18  # constant rate factor, 0 = lossless for x264; None leaves the encoder default
    preset: str | None = 'veryfast'  # x264 speed/size trade-off; None for encoders without presets
    gop: int = 2  # keyframe interval: small keeps a random frame cheap to seek to (LeRobot uses 2)

    def __post_init__(self) -> None:
        if self.codec not in av.codecs_available:
            raise ValueError(f'VideoConfig.codec {self.codec!r} is not in this PyAV build; try libx264 or mpeg4')
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise ValueError(f'VideoConfig.crf must be in 0..63 or None, got {self.crf}')
        if self.gop < 1:
            raise ValueError(f'VideoConfig.gop must be >= 1, got {self.gop}')

    @classmethod
    def lossless(cls) -> VideoConfig:
        """Bit-exact RGB frames (x264 RGB mode at crf 0); files are about 15x larger than the default."""
        return cls(codec='libx264rgb', pix_fmt='rgb24', crf=0, preset='veryfast')

    def check_size(self, height: int, width: int) -> None:
        """Raise ValueError if this pixel format cannot hold (height, width) frames (4:2:0 needs even sizes)."""
        if self.pix_fmt.endswith('420p') and (height % 2 or width % 2):
            raise ValueError(f'pix_fmt {self.pix_fmt!r} needs an even frame size, got {height}x{width}; '
                             "use VideoConfig(pix_fmt='yuv444p')")

    def options(self) -> dict[str, str]:
        opts = {'g': str(self.gop)}
        if self.crf is not None:
            opts['crf'] = str(self.crf)
        if self.preset is not None:
            opts['preset'] = self.preset
        return opts

    def feature_info(self, fps: int, height: int, width: int) -> dict[str, Any]:
        """The `info` entry LeRobot keeps for a video feature in info.json (plus the encoder settings)."""
        return {'video.fps': fps, 'video.height': height, 'video.width': width, 'video.channels': 3,
                'video.codec': av.codec.Codec(self.codec, 'w').canonical_name, 'video.pix_fmt': self.pix_fmt,
                'video.is_depth_map': False, 'has_audio': False, 'video.encoder': self.codec,
                'video.crf': self.crf, 'video.preset': self.preset, 'video.g': self.gop}

    @classmethod
    def from_feature_info(cls, info: dict[str, Any]) -> VideoConfig:
        """The config a dataset was written with (for appending episodes with the same settings)."""
        return cls(codec=info.get('video.encoder', 'libx264'), pix_fmt=info.get('video.pix_fmt', 'yuv420p'),
                   crf=info.get('video.crf', 18), preset=info.get('video.preset', 'veryfast'),
                   gop=info.get('video.g', 2))


class VideoEncoder:
    """Writes uint8 (H, W, 3) RGB frames one at a time into an mp4 file.

    Args:
        path: the mp4 to create.
        fps: frames per second (integer, as LeRobot).
        height, width: frame size; yuv420p needs both even.
        config: codec settings.

    Raises:
        ValueError: odd frame size with a 4:2:0 pixel format.
    """

    def __init__(self, path: Path, fps: int, height: int, width: int, config: VideoConfig) -> None:
        config.check_size(height, width)
        self.path, self.height, self.width = Path(path), height, width
        self._container = av.open(str(path), mode='w')
        self._stream = self._container.add_stream(config.codec, rate=fps, options=config.options())
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, config.pix_fmt
        self._stream.codec_context.time_base = fractions.Fraction(1, fps)
        self.frames = 0

    def add(self, image: np.ndarray) -> None:
        """Encode one frame, uint8 (H, W, 3) RGB."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format='rgb24')
        frame.pts = self.frames
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None


def _frame_index(frame: av.VideoFrame, fps: int) -> int:
    return int(round(float(frame.time) * fps))


def read_video(path: str | Path, fps: int) -> np.ndarray:
    """Decode every frame of an mp4.

    Returns:
        uint8 (T, H, W, 3) RGB.

    Raises:
        FileNotFoundError: `path` does not exist.
        RuntimeError: the time stamps are not 0, 1/fps, 2/fps, ... (a dropped or duplicated frame).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'video file {str(path)!r} does not exist')
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if _frame_index(frame, fps) != i:
                raise RuntimeError(f'{str(path)!r}: frame {i} has time {frame.time}, expected {i / fps}')
            frames.append(frame.to_ndarray(format='rgb24'))
    if not frames:
        raise RuntimeError(f'{str(path)!r} holds no video frames')
    return np.stack(frames)


def read_video_frames(path: str | Path, fps: int, indices: Sequence[int]) -> np.ndarray:
    """Decode only the frames `indices` (sorted or not) by seeking to the keyframe before the first one.

    Returns:
        uint8 (len(indices), H, W, 3) RGB, in the order of `indices`.

    Raises:
        FileNotFoundError: `path` does not exist.
        IndexError: an index is past the last frame.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'video file {str(path)!r} does not exist')
    wanted = sorted(set(int(i) for i in indices))
    found: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(math.floor(wanted[0] / fps / stream.time_base)), stream=stream, backward=True)
        for frame in container.decode(stream):
            index = _frame_index(frame, fps)
            if index in wanted:
                found[index] = frame.to_ndarray(format='rgb24')
            if index >= wanted[-1]:
                break
    missing = [i for i in wanted if i not in found]
    if missing:
        raise IndexError(f'{str(path)!r} has no frame(s) {missing}')
    return np.stack([found[int(i)] for i in indices])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 image arrays of the same shape (inf when equal)."""
    if a.shape != b.shape:
        raise ValueError(f'psnr needs equal shapes, got {a.shape} and {b.shape}')
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
