"""Co-training folders built by two processes at once (slices of one experiment side by side)."""

import json

import numpy as np

from maps_vla.train.cotrain import VL_INDEX_FILE, write_vl_folder


def test_the_folder_another_process_published_first_is_kept(tmp_path):
    root = tmp_path / 'vl'
    image = np.zeros((4, 4, 3), np.uint8)

    def scenes():
        # another process finishes the same folder while this one is still rendering
        (root / 'images').mkdir(parents=True)
        (root / VL_INDEX_FILE).write_text(json.dumps({'image': 'images/a.png', 'question': 'q?', 'answer': 'first'}))
        yield 'b', image, [('q?', 'second')]

    assert write_vl_folder(root, scenes()) == root
    assert '"first"' in (root / VL_INDEX_FILE).read_text()
    assert [p.name for p in tmp_path.iterdir()] == ['vl']  # this process's staging folder is gone
    assert write_vl_folder(tmp_path / 'alone', [('c', image, [('q?', 'a')])]) == tmp_path / 'alone'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['alone', 'vl']
