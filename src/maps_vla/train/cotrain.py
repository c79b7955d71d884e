"""Vision-language co-training data (arXiv 2509.11417): image + question -> answer batches mixed into training.

A co-training folder holds `vl.jsonl`, one JSON object per line: {"image": "<path relative to the folder>",
"question": "...", "answer": "..."}; images are RGB PNG/JPEG. Keeping VL batches in the mix preserves the
backbone's vision-language skills while it learns actions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from maps_vla.data.layout import publish_folder, staging_folder

__all__ = ['VLDataset', 'collate_vl', 'is_cotrain_step', 'write_vl_folder', 'merge_vl_folders',
           'VL_INDEX_FILE']

VL_INDEX_FILE = 'vl.jsonl'

logger = logging.getLogger(__name__)


class VLDataset(torch.utils.data.Dataset):
    """Image-question-answer examples: {'images': float (3, H, W) in [0, 1], 'question': str, 'answer': str}."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        index = self.root / VL_INDEX_FILE
        if not index.is_file():
            raise FileNotFoundError(f'Co-training folder {str(self.root)!r} has no {VL_INDEX_FILE}')
        self.items: list[dict[str, str]] = []
        for number, line in enumerate(index.read_text().splitlines(), 1):
            if not line.strip():
                continue
            item = json.loads(line)
            missing = {'image', 'question', 'answer'} - set(item)
            if missing:
                raise ValueError(f'{str(index)!r} line {number} lacks {sorted(missing)}')
            self.items.append(item)
        if not self.items:
            raise ValueError(f'{str(index)!r} holds no examples')

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        path = self.root / item['image']
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f'Co-training image {str(path)!r} is missing or unreadable')
        rgb = np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1))
        return {'images': torch.from_numpy(rgb).float().div_(255.0), 'question': item['question'],
                'answer': item['answer']}


def collate_vl(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {'images': torch.stack([s['images'] for s in samples]), 'question': [s['question'] for s in samples],
            'answer': [s['answer'] for s in samples]}


def is_cotrain_step(step: int, ratio: float) -> bool:
    """Whether optimizer step `step` (0-based) takes a VL batch: evenly spread, exactly `ratio` in the long run,
    and a pure function of the step so that a resumed run mixes exactly like an uninterrupted one."""
    return ratio > 0 and math.floor((step + 1) * ratio) > math.floor(step * ratio)


def write_vl_folder(root: str | os.PathLike,
                    scenes: Iterable[tuple[str, np.ndarray, Iterable[tuple[str, str]]]]) -> Path:
    """Write a co-training folder from (name, RGB uint8 image, [(question, answer), ...]) per scene: the image as
    `images/<name>.png`, one index line per pair.

    Built beside `root` and renamed into place, so an interrupted run leaves no half-written folder; an existing one
    is kept and `scenes` is not consumed (a generator renders nothing then).

    Returns:
        The folder.
    """
    root = Path(root)
    if (root / VL_INDEX_FILE).is_file():
        return root
    staging = staging_folder(root)
    (staging / 'images').mkdir(parents=True)
    lines, images = [], 0
    for name, image, pairs in scenes:
        path = f'images/{name}.png'
        cv2.imwrite(str(staging / path), np.ascontiguousarray(np.asarray(image)[..., ::-1]))
        images += 1
        lines += [json.dumps({'image': path, 'question': q, 'answer': a}) for q, a in pairs]
    (staging / VL_INDEX_FILE).write_text('\n'.join(lines) + '\n')
    publish_folder(staging, root)
    logger.info('wrote %d VL examples from %d images to %s', len(lines), images, root)
    return root


def merge_vl_folders(sources: list[str | os.PathLike], dest: str | os.PathLike) -> Path:
    """One co-training folder holding the examples of every folder in `sources` (images hard-linked, or copied
    across file systems), each source's images under `<k>/`. Built beside `dest` and renamed into place; an
    existing `dest` is kept.

    Raises:
        FileNotFoundError: a source has no `vl.jsonl`.
    """
    dest = Path(dest)
    if (dest / VL_INDEX_FILE).is_file():
        return dest
    staging = staging_folder(dest)
    lines = []
    for k, source in enumerate(VLDataset(s) for s in sources):
        for item in source.items:
            image = f'{k}/{item["image"]}'
            target = staging / image
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source.root / item['image'], target)
                except OSError:
                    shutil.copyfile(source.root / item['image'], target)
            lines.append(json.dumps({**item, 'image': image}))
    (staging / VL_INDEX_FILE).write_text('\n'.join(lines) + '\n')
    return publish_folder(staging, dest)
