"""Camera frames <-> mp4 through PyAV: a streaming encoder, frame-exact decoding, and PSNR.

Frames are encoded with presentation time stamps pts = frame_index in a 1/fps time base, so frame i of an episode
is the frame shown at i / fps; decoding maps each frame back to its index by rounding time * fps, which is how
random access (`read_video_frames`) finds a frame after a seek.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import fractions
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import av.video.reformatter
import numpy as np

__all__ = ['VideoConfig', 'VideoEncoder', 'VideoReader', 'read_video', 'read_video_frames', 'concat_videos',
           'cut_video', 'psnr']

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
        if self.codec.startswith('libx264'):
            # no B-frames: a decoder outputs a frame as soon as it has it, so a random frame decodes about 25 %
            # faster after a seek (at gop 2 B-frames save nothing in size)
            opts['bf'] = '0'
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


def _frame_index(frame: av.VideoFrame, fps: int, start: float = 0.0) -> int:
    return int(round((float(frame.time) - start) * fps))


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


def read_video_frames(path: str | Path, fps: int, indices: Sequence[int], start: float = 0.0) -> np.ndarray:
    """Decode only the frames `indices` (sorted or not) by seeking to the keyframe before the first one.

    Args:
        path: the mp4.
        fps: frames per second.
        indices: frame indices counted from time `start`.
        start: time (s) of frame 0 in the file (a v3.0 episode's `from_timestamp`; 0 for a v2.1 file).

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
        container.seek(int(math.floor((start + wanted[0] / fps) / stream.time_base)), stream=stream,
                       backward=True)
        for frame in container.decode(stream):
            index = _frame_index(frame, fps, start)
            if index in wanted:
                found[index] = frame.to_ndarray(format='rgb24')
            if index >= wanted[-1]:
                break
    missing = [i for i in wanted if i not in found]
    if missing:
        raise IndexError(f'{str(path)!r} has no frame(s) {missing}')
    return np.stack([found[int(i)] for i in indices])


class VideoReader:
    """Random access to the frames of one mp4 that keeps the file and its decoder open between calls.

    On open the packets are indexed (frame number, keyframe flag, byte range; one pass over the file). A frame is
    then decoded by feeding the decoder the packets from the keyframe at or before it (or from the frame after the
    last decoded one, when that is on the way) straight from the file: no container seek, no demuxer restart,
    which is what dominated the cost of a random frame. Streams whose packets are reordered (B-frames) use the
    container's seek instead. The last `cache_frames` returned frames are kept. Not thread-safe: use one per
    DataLoader worker (`Dataset` does).

    Args:
        path: the mp4.
        fps: frames per second.
        cache_frames: returned frames kept, 0 for none.
    """

    def __init__(self, path: str | Path, fps: int, *, cache_frames: int = 16) -> None:
        self.path, self.fps = Path(path), fps
        if not self.path.is_file():
            raise FileNotFoundError(f'video file {str(self.path)!r} does not exist')
        self._container = av.open(str(self.path))
        self._stream = self._container.streams.video[0]
        self._codec = self._stream.codec_context
        self._tb = tb = self._stream.time_base
        packets = [(int(round(float(p.pts * tb) * fps)), bool(p.is_keyframe), int(p.pos), int(p.size), p.pts, p.dts)
                   for p in self._container.demux(self._stream) if p.pts is not None and p.size > 0]
        numbers = [p[0] for p in packets]
        # direct decoding needs packets in display order with distinct frame numbers and known file positions
        self._direct = (numbers == sorted(set(numbers)) and all(p[2] >= 0 for p in packets)
                        and not self._codec.has_b_frames)
        self._packets = {p[0]: p for p in packets}
        self._order = numbers
        self._position = {n: i for i, n in enumerate(numbers)}
        self._keys = [p[0] for p in packets if p[1]]
        self._file = open(self.path, 'rb') if self._direct else None
        self._next: int | None = None  # direct mode: the next packet (frame number) of the current decode run
        self._out = -1  # direct mode: the frame number the decoder returned last
        self._decoder: Any = None  # seek mode: generator of the current decode run
        self._seek_last = -1
        self._cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._cache_frames = cache_frames
        # one converter for all frames: a frame's own to_ndarray() sets up a (threaded) scaler every time, which
        # costs more than decoding a small frame
        self._rgb = av.video.reformatter.VideoReformatter()

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return self._rgb.reformat(frame, format='rgb24', threads=1).to_ndarray()

    def frame(self, index: int, start: float = 0.0) -> np.ndarray:
        """uint8 (H, W, 3) RGB of frame `index` counted from time `start` (s, a multiple of 1 / fps).

        Raises:
            IndexError: the file has no frame at that time.
        """
        number = int(round(start * self.fps)) + int(index)
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        image = self._decode_direct(number) if self._direct else self._decode_seek(number)
        if self._cache_frames:
            self._cache[number] = image
            if len(self._cache) > self._cache_frames:
                self._cache.popitem(last=False)
        return image

    def _decode_direct(self, number: int) -> np.ndarray:
        if number not in self._packets:
            raise IndexError(f'{str(self.path)!r} has no frame at time {number / self.fps:.4f} s')
        at = bisect.bisect_right(self._keys, number) - 1
        if at < 0:
            raise IndexError(f'{str(self.path)!r}: no keyframe before the frame at {number / self.fps:.4f} s')
        key = self._keys[at]
        # go on with the current run (the decoder holds the frames since its keyframe) unless the frame is behind
        # it or a later keyframe lets the run skip ahead
        if self._next is None or self._out >= number or key > self._next:
            self._codec.flush_buffers()
            self._next, self._out = key, key - 1
        while True:
            if self._next is not None:
                _, _, pos, size, pts, dts = self._packets[self._next]
                self._file.seek(pos)
                packet = av.Packet(self._file.read(size))
                packet.pts, packet.dts, packet.time_base = pts, dts, self._tb
                frames = self._codec.decode(packet)
                i = self._position[self._next] + 1
                self._next = self._order[i] if i < len(self._order) else None
            else:  # past the last packet: drain the decoder (a new run starts with flush_buffers)
                frames = self._codec.decode(None)
                if not frames:
                    break
            for frame in frames:
                self._out = int(round(float(frame.pts * self._tb) * self.fps))
                if self._out == number:
                    return self._to_rgb(frame)
            if self._out > number:
                break
        self._next, self._out = None, -1
        raise IndexError(f'{str(self.path)!r}: the decoder returned no frame for time {number / self.fps:.4f} s')

    def _decode_seek(self, number: int) -> np.ndarray:
        if self._decoder is None or not self._seek_last < number <= self._seek_last + 1:
            self._container.seek(int(math.floor(number / self.fps / self._stream.time_base)), stream=self._stream,
                                 backward=True)
            self._decoder = self._container.decode(self._stream)
        image = None
        for frame in self._decoder:
            current = int(round(float(frame.time) * self.fps))
            self._seek_last = current
            if current == number:
                image = self._to_rgb(frame)
            if current >= number:
                break
        else:
            self._decoder = None
        if image is None:
            self._decoder = None
            raise IndexError(f'{str(self.path)!r} has no frame at time {number / self.fps:.4f} s')
        return image

    def close(self) -> None:
        """Close the file (the reader cannot be used afterwards)."""
        self._decoder = None
        if self._file is not None:
            self._file.close()
        self._container.close()


def concat_videos(inputs: Sequence[Path], output: Path, lengths: Sequence[int], fps: int) -> list[float]:
    """Join mp4s of the same codec and size into `output` without re-encoding (packets are copied).

    Args:
        inputs: mp4 files, in order.
        output: the file to write.
        lengths: frames of each input.
        fps: frames per second of all inputs.

    Returns:
        The time (s, a whole number of frames) at which each input starts in `output` (a v3.0 `from_timestamp`).

    Raises:
        ValueError: the inputs differ in codec or frame size.
    """
    starts: list[float] = []
    offset = 0  # frames
    last_dts: float | None = None
    with av.open(str(output), mode='w') as out:
        out_stream, kind = None, None
        for path, length in zip(inputs, lengths, strict=True):
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                this = (stream.codec_context.name, stream.width, stream.height, stream.format.name)
                if out_stream is None:
                    out_stream, kind = out.add_stream_from_template(stream), this
                elif this != kind:
                    raise ValueError(f'{str(path)!r} is {this}, {str(inputs[0])!r} {kind} (codec, width, height, '
                                     'pixel format); they cannot be joined without re-encoding')
                tb = stream.time_base
                packets = [p for p in container.demux(stream) if p.dts is not None]
                while packets and last_dts is not None and offset / fps + float(packets[0].dts * tb) <= last_dts:
                    offset += 1  # a gap of one frame keeps the decode times increasing
                shift = int(round(fractions.Fraction(offset, fps) / tb))
                for packet in packets:
                    packet.pts += shift
                    packet.dts += shift
                    last_dts = float(packet.dts * tb)
                    packet.stream = out_stream
                    out.mux(packet)
                starts.append(offset / fps)
                offset += int(length)
    return starts


def cut_video(path: Path, output: Path, start: float, frames: int, fps: int) -> bool:
    """Copy `frames` frames from time `start` of `path` into `output`, starting at time 0, without re-encoding.

    Returns:
        False (and no `output`) when the frames do not start with a keyframe or are not all there: such an episode
        must be decoded and encoded again.
    """
    first = int(round(start * fps))
    kept = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        container.seek(int(math.floor(start / tb)), stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.pts is None or packet.dts is None:
                continue
            number = int(round(float(packet.pts * tb) * fps))
            if number >= first + frames and packet.is_keyframe:
                break
            if first <= number < first + frames:
                kept.append(packet)
            elif kept:
                return False  # a frame of the range depends on one outside it
        numbers = sorted(int(round(float(p.pts * tb) * fps)) for p in kept)
        if not kept or not kept[0].is_keyframe or numbers != list(range(first, first + frames)):
            return False
        shift = int(round(fractions.Fraction(first, fps) / tb))
        with av.open(str(output), mode='w') as out:
            out_stream = out.add_stream_from_template(stream)
            for packet in kept:
                packet.pts -= shift
                packet.dts -= shift
                packet.stream = out_stream
                out.mux(packet)
    return True


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 image arrays of the same shape (inf when equal)."""
    if a.shape != b.shape:
        raise ValueError(f'psnr needs equal shapes, got {a.shape} and {b.shape}')
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
