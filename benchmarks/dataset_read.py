"""Training read speed of maps_vla.data per storage format: samples/s through TorchDataset and a DataLoader.

Episodes of two 224x224 cameras are rendered by MuJoCo (the scene of dataset_write.py; resized for --size 64),
written in each format, and read back the way the trainer reads them: batches of uniformly random frame indices
(trainer._BatchSampler's order), `TorchDataset(chunk_size=8)`, default collation, `--workers` DataLoader processes.
Timed: `--batches` batches after two untimed ones (worker start-up, first decoder opens), as wall-clock samples/s
and, with --workers 0, as samples per CPU second of the process (which a loaded machine does not distort).
'open per sample' is the reader before decoders were kept open (a new PyAV container, seek and decode per frame).
Run: PYTHONPATH=src MUJOCO_GL=egl python benchmarks/dataset_read.py [--size 224 --workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataset_write import CAMERAS, FPS, render_episodes  # noqa: E402

from maps_vla.data import Dataset, DatasetWriter  # noqa: E402
from maps_vla.data import dataset as _dataset  # noqa: E402
from maps_vla.data.torch_dataset import TorchDataset  # noqa: E402
from maps_vla.data.video import read_video_frames  # noqa: E402


class _OpenPerSample(Dataset):
    """The reader before decoder reuse: every frame opens its mp4, seeks and decodes (`read_video_frames`)."""

    def _reader(self, path: Path):
        fps = self.fps

        class _Once:
            @staticmethod
            def frame(index: int, start: float = 0.0) -> np.ndarray:
                return read_video_frames(path, fps, [index], start)[0]

        return _Once()


def _write(root: Path, episodes: list[list[dict]], size: int, **kwargs) -> None:
    features = {**{c: {'dtype': 'video', 'shape': (size, size, 3), 'names': ['height', 'width', 'channels']}
                   for c in CAMERAS},
                'observation.state': {'dtype': 'float32', 'shape': (8,), 'names': None},
                'action': {'dtype': 'float32', 'shape': (7,), 'names': None}}
    with DatasetWriter.create(root, FPS, features, **kwargs) as writer:
        for frames in episodes:
            for frame in frames:
                writer.add_frame(frame, task='put the red block on the plate')
            writer.save_episode()


def _png_folders(root: Path) -> None:
    """Turn a v2.1 images-in-Parquet dataset into maps_vla's pre-v3.0 layout (PNG files under images/)."""
    info = json.loads((root / 'meta/info.json').read_text())
    info['image_path'] = 'images/{image_key}/episode_{episode_index:06d}/frame_{frame_index:06d}.png'
    (root / 'meta/info.json').write_text(json.dumps(info))
    for path in sorted((root / 'data').rglob('*.parquet')):
        table = pq.read_table(path)
        episode = int(table.column('episode_index')[0].as_py())
        for key in CAMERAS:
            folder = root / 'images' / key / f'episode_{episode:06d}'
            folder.mkdir(parents=True)
            for i, cell in enumerate(table.column(key).to_pylist()):
                (folder / f'frame_{i:06d}.png').write_bytes(cell['bytes'])
        pq.write_table(table.drop_columns(list(CAMERAS)), path)


def _batches(n: int, batch: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for b in range(n // batch):
            yield order[b * batch:(b + 1) * batch].tolist()


def measure(dataset: Dataset, batches: int, batch_size: int, workers: int) -> tuple[float, float]:
    """(samples per wall-clock second, samples per CPU second of this process; the latter only for workers=0)."""
    sampler = _batches(len(dataset), batch_size)
    loader = torch.utils.data.DataLoader(TorchDataset(dataset, chunk_size=8), batch_sampler=sampler,
                                         num_workers=workers)
    it = iter(loader)
    for _ in range(2):
        next(it)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return batches * batch_size / wall, (batches * batch_size / cpu if workers == 0 else float('nan'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=8)
    parser.add_argument('--frames', type=int, default=100, help='frames per episode')
    parser.add_argument('--size', type=int, default=224, help='camera side in pixels (64 or 224)')
    parser.add_argument('--batches', type=int, default=20)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--workers', type=int, default=0,
                        help='DataLoader workers; 0 also measures CPU time (robust on a loaded machine)')
    args = parser.parse_args()
    episodes = render_episodes(args.episodes, args.frames)
    if args.size != 224:
        for frames in episodes:
            for frame in frames:
                for c in CAMERAS:
                    frame[c] = cv2.resize(frame[c], (args.size, args.size), interpolation=cv2.INTER_AREA)
    formats = [
        ('v2.1 PNG files (maps_vla < v3.0)', dict(video=False, codebase_version='v2.1'), 'folders'),
        ('v2.1 PNG in Parquet (LeRobot image mode)', dict(video=False, codebase_version='v2.1'), None),
        ('v3.0 PNG in Parquet', dict(video=False, codebase_version='v3.0'), None),
        ('v2.1 mp4 (one per episode)', dict(video=True, codebase_version='v2.1'), None),
        ('v3.0 mp4 (all episodes in one file), open per sample', dict(video=True, codebase_version='v3.0'), 'open'),
        ('v3.0 mp4 (all episodes in one file)', dict(video=True, codebase_version='v3.0'), None),
    ]
    torch.set_num_threads(1)
    print(f'{args.episodes} episodes x {args.frames} frames, 2 cameras {args.size}x{args.size}, batch '
          f'{args.batch_size}, {args.workers} workers, random frames')
    ratio = 'CPU cost vs PNG files' if args.workers == 0 else 'wall time vs PNG files'
    print(f'| format | samples/s (wall) | samples per CPU s | {ratio} |')
    print('|---|---|---|---|')
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, kwargs, variant) in enumerate(formats):
            root = Path(tmp) / str(i)
            _write(root, episodes, args.size, **kwargs)
            if variant == 'folders':
                _png_folders(root)
            dataset = (_OpenPerSample if variant == 'open' else _dataset.Dataset)(root)
            rate, per_cpu = measure(dataset, args.batches, args.batch_size, args.workers)
            base = per_cpu if args.workers == 0 else rate
            reference = reference or base
            print(f'| {name} | {rate:.0f} | {per_cpu:.0f} | {reference / base:.2f}x |', flush=True)


if __name__ == '__main__':
    main()
