"""VL examples about pick_place scenes: answers name each object's colour, shape and position on a 2 cm grid."""

import json

import numpy as np
import pytest

from maps_vla.model.vla.tokenization_vla import build_word_tokenizer
from maps_vla.pretrain.pipeline import vocabulary_texts
from maps_vla.pretrain.scene_vl import position_words, scene_questions, write_scene_vl
from maps_vla.sim import EnvConfig, make_env
from maps_vla.sim.tasks.pick_place import TRAIN_COLORS, SceneObject
from maps_vla.train.cotrain import VLDataset, merge_vl_folders


def test_positions_round_to_the_grid_in_centimetres():
    assert position_words((0.503, -0.081)) == 'x 50 y -8'
    assert position_words((0.419, 0.129)) == 'x 42 y 12'
    pairs = scene_questions([SceneObject('red', 'cube', (0.5, -0.06)), SceneObject('blue', 'block', (0.4, 0.2))])
    assert pairs == [('where is the red cube?', 'x 50 y -6'), ('what is at x 50 y -6?', 'red cube'),
                     ('where is the blue block?', 'x 40 y 20'), ('what is at x 40 y 20?', 'blue block')]


def test_objects_are_the_target_then_the_distractors_where_they_lie():
    with make_env(EnvConfig(variant='ood_distractors', image_size=(28, 28))) as env:
        env.reset(3)
        objects = env.task.objects(env.physics)
        target = objects[0]
        assert len(objects) == 4 and env.instruction == f'put the {target.color} {target.shape} on the plate'
        assert all(o.color in TRAIN_COLORS and o.color != target.color for o in objects[1:])
        np.testing.assert_allclose(target.xy, env.physics.body_pos(env.task.object_body)[:2])


def test_scene_folder_merges_with_another_and_every_word_is_in_the_vocabulary(tmp_path):
    scenes = write_scene_vl(tmp_path / 'scenes', ('train', 'ood_distractors'), 2, 28, progress=False)
    items = VLDataset(scenes).items
    assert len(items) == 2 * 2 * 1 + 2 * 2 * 4  # 2 questions per object: 1 object in train, 4 with distractors
    assert items[0]['question'].startswith('where is the ') and items[1]['question'].startswith('what is at x ')
    tokenizer = build_word_tokenizer(vocabulary_texts('task: {instruction}\naction:', 'q: {question}\na:',
                                                      scene_vl=True))
    for item in items:
        ids = tokenizer(f"q: {item['question']}\na: {item['answer']}")['input_ids']
        assert tokenizer.unk_token_id not in ids, item

    other = tmp_path / 'other'
    (other / 'images').mkdir(parents=True)
    (other / 'images' / 'a.png').write_bytes((scenes / items[0]['image']).read_bytes())
    (other / 'vl.jsonl').write_text(json.dumps({'image': 'images/a.png', 'question': 'q?', 'answer': 'a'}) + '\n')
    merged = merge_vl_folders([scenes, other], tmp_path / 'merged')
    dataset = VLDataset(merged)
    assert len(dataset) == len(items) + 1 and dataset.items[-1]['image'] == '1/images/a.png'
    assert dataset[len(items)]['images'].shape == (3, 28, 28) and not (tmp_path / 'merged.tmp').exists()
    with pytest.raises(FileNotFoundError, match='vl.jsonl'):
        merge_vl_folders([tmp_path / 'missing'], tmp_path / 'again')
