"""Vision-language examples about pick_place scenes: where each object is, and what is at a place.

Issue 13 asks the prior's VL co-training to cover the robot scenes (object colours, shapes, positions) beside the
emoji cards. Each scene is a reset of a pre-training variant, rendered by the robot's own third-person camera at
the demos' size, from seeds no demo or evaluation uses. Every object on the table (the one to pick and any
distractors) gives two examples:

    'where is the red cube?'   -> 'x 50 y -8'   (its base-frame centre in cm, to the nearest `GRID_CM`)
    'what is at x 50 y -8?'    -> 'red cube'

The shipped prior closed its gripper 2-5 cm off the cube: these answers supervise exactly that localisation in the
vision features the action head reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from maps_vla.sim.tasks.base import SHAPES
from maps_vla.sim.tasks.pick_place import HELDOUT_COLORS, OBJECT_REGION, TRAIN_COLORS, SceneObject

__all__ = ['GRID_CM', 'SEED_BASE', 'position_words', 'scene_questions', 'vocabulary_texts', 'write_scene_vl']

GRID_CM = 2  # position answers are rounded to this many cm
SEED_BASE = 5_000_000  # env seeds of the scenes: demos start at cfg.seed + 100_000·i, evaluation at 10_000
_IMAGE = 'observation.images.third_person'


def position_words(xy: Sequence[float]) -> str:
    """'x 50 y -8': a base-frame xy (m) in cm, rounded to the nearest `GRID_CM`."""
    x, y = (int(GRID_CM * round(100 * v / GRID_CM)) for v in xy)
    return f'x {x} y {y}'


def scene_questions(objects: Sequence[SceneObject]) -> list[tuple[str, str]]:
    """(question, answer) pairs: a where- and a what-question per object."""
    pairs = []
    for obj in objects:
        name, place = f'{obj.color} {obj.shape}', position_words(obj.xy)
        pairs += [(f'where is the {name}?', place), (f'what is at {place}?', name)]
    return pairs


def vocabulary_texts(vl_prompt_template: str) -> list[str]:
    """Every question and answer the examples can hold (the word tokenizer's vocabulary): all colours and shapes,
    and every grid position of the object region with a cell's margin."""
    (x0, x1), (y0, y1) = OBJECT_REGION
    cm = [c for c in range(int(100 * min(x0, y0)) - 2 * GRID_CM, int(100 * max(x1, y1)) + 2 * GRID_CM + 1)
          if c % GRID_CM == 0]
    texts = [f'x {c} y {c}' for c in cm]
    for color in (*TRAIN_COLORS, *HELDOUT_COLORS):
        for shape in SHAPES:
            texts += [vl_prompt_template.format(question=f'where is the {color} {shape}?'), f'{color} {shape}']
    texts.append(vl_prompt_template.format(question='what is at x 0 y 0?'))
    return texts


def write_scene_vl(root: str | Path, variants: Sequence[str], scenes_per_variant: int, image_size: int, *,
                   progress: bool = True) -> Path:
    """Write a co-training folder (`vl.jsonl` + PNGs, see `maps_vla.train.cotrain`) of pick_place scenes.

    `scenes_per_variant` scenes of each variant (seeds `SEED_BASE + 100_000·i + k`). The folder is built beside
    `root` and renamed into place, so an interrupted run leaves no half-written dataset; an existing one is kept.

    Returns:
        The folder.
    """
    from maps_vla.sim import EnvConfig, make_env
    from maps_vla.train.cotrain import write_vl_folder

    def scenes():
        for i, variant in enumerate(variants):
            first = SEED_BASE + 100_000 * i
            with make_env(EnvConfig(task='pick_place', variant=variant, image_size=(image_size, image_size))) as env:
                for k in tqdm(range(scenes_per_variant), desc=f'VL scenes ({variant})', unit='scene',
                              disable=not progress):
                    obs = env.reset(first + k)
                    yield f'{variant}_{k:06d}', obs[_IMAGE], scene_questions(env.task.objects(env.physics))

    return write_vl_folder(root, scenes())
