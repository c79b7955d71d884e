"""The env contract other packages code against: API, features, determinism, config validation, images."""

import dataclasses

import numpy as np
import pytest

from maps_vla.config import from_dict, to_dict
from maps_vla.policy import ActionSpec
from maps_vla.sim import TASK_NAMES, TASK_VARIANTS, WIDE_VIEW, CameraView, EnvConfig, make_env
from maps_vla.sim import emoji as _emoji

_SMALL = {'image_size': (64, 64)}


@pytest.fixture(scope='module')
def env():
    env = make_env(EnvConfig(**_SMALL))
    yield env
    env.close()


def test_public_surface():
    assert set(TASK_NAMES) == {'pick_place', 'emoji'}
    assert TASK_VARIANTS['pick_place'][0] == 'train' and TASK_VARIANTS['emoji'] == ('train', 'ood_emoji')


def test_observation_matches_features(env):
    obs = env.reset(seed=3)
    feats = env.features
    assert set(feats) == {k for k in obs if k != 'task'} | {'action'}
    for key, feat in feats.items():
        assert set(feat) == {'dtype', 'shape', 'names'}
        if key == 'action':
            continue
        value = obs[key]
        assert value.shape == tuple(feat['shape']), key
        assert value.dtype == (np.uint8 if feat['dtype'] == 'image' else np.dtype(feat['dtype'])), key
        if feat['dtype'] != 'image':
            assert len(feat['names']) == feat['shape'][0]
    assert obs['task'] == env.instruction and obs['task'].startswith('put the ')
    assert feats['observation.state']['shape'] == (8,) and feats['observation.joint_state']['shape'] == (9,)
    assert isinstance(env.action_spec, ActionSpec) and env.action_spec.kind == 'ee_delta'
    assert feats['action']['shape'] == (7,) and env.control_hz == 10.0


def test_state_is_tcp_pose_and_fingers(env):
    obs = env.reset(seed=0)
    p = env.physics
    np.testing.assert_allclose(obs['observation.state'][:3], p.tcp_pos, atol=1e-6)
    np.testing.assert_allclose(obs['observation.state'][6:], p.finger_qpos, atol=1e-6)
    assert np.linalg.norm(obs['observation.state'][3:6]) < 0.1  # near tool-down at home
    np.testing.assert_allclose(obs['observation.joint_state'], p.joint_state, atol=1e-6)


def test_step_returns_gym_tuple(env):
    obs = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(np.zeros(7, dtype=np.float32))
    assert isinstance(reward, float) and reward == 0.0
    assert terminated is False and truncated is False and info['success'] is False


def test_same_seed_gives_identical_episode():
    rng = np.random.default_rng(0)
    actions = [np.concatenate([0.02 * rng.standard_normal(6), [i > 3]]) for i in range(6)]
    runs = []
    for _ in range(2):
        env = make_env(EnvConfig(task='pick_place', variant='ood_distractors', **_SMALL))
        trace = [env.reset(seed=11)]
        trace += [env.step(a)[0] for a in actions]
        runs.append(trace)
        env.close()
    for a, b in zip(*runs):
        assert a.keys() == b.keys()
        for key in a:
            assert np.array_equal(a[key], b[key]) if key != 'task' else a[key] == b[key], key


def test_reset_without_seed_continues_the_stream_and_seeds_differ(env):
    first = env.reset(seed=5)['observation.state']
    second = env.reset()['observation.state']
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(env.reset(seed=5)['observation.state'], first)


def test_step_errors(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match='shape'):
        env.step(np.zeros(6))
    with pytest.raises(ValueError, match='non-finite'):
        env.step(np.full(7, np.nan))
    fresh = make_env(EnvConfig(render=False))
    with pytest.raises(RuntimeError, match='reset'):
        fresh.step(np.zeros(7))
    with pytest.raises(RuntimeError, match='reset'):
        fresh.instruction


def test_truncation_after_episode_seconds():
    env = make_env(EnvConfig(render=False, episode_seconds=0.5, control_hz=20))
    env.reset(seed=0)
    flags = [env.step(np.zeros(7))[3] for _ in range(10)]
    assert flags == [False] * 9 + [True]
    with pytest.raises(RuntimeError):
        env.step(np.zeros(7))


def test_joint_position_actions_reach_targets():
    env = make_env(EnvConfig(action_kind='joint_position', render=False))
    env.reset(seed=0)
    assert env.action_spec.kind == 'joint_position' and env.action_spec.gripper_index == 7
    target = np.array([0.3, -0.5, 0.2, -2.0, 0.1, 1.8, 0.5])
    for _ in range(20):
        env.step(np.concatenate([target, [0.0]]))
    np.testing.assert_allclose(env.physics.arm_qpos, target, atol=2e-3)
    # Joint limits are respected, however far the target.
    for _ in range(20):
        env.step(np.array([5.0, 5, 5, 5, 5, 5, 5, 0]))
    lo, hi = env.physics.arm_range.T
    assert np.all(env.physics.arm_qpos <= hi + 1e-3) and np.all(env.physics.arm_qpos >= lo - 1e-3)


@pytest.mark.parametrize('kwargs,match', [
    ({'task': 'pick_plate'}, "Did you mean 'pick_place'"),
    ({'variant': 'ood_emoji'}, 'variant'),
    ({'control_hz': 7.0}, 'whole number'),
    ({'control_hz': 0.0}, 'control_hz'),
    ({'image_size': (224, 8)}, 'image_size'),
    ({'action_kind': 'torque'}, 'action_kind'),
    ({'max_pos_step': 0.0}, 'max_pos_step'),
    ({'episode_seconds': -1.0}, 'episode_seconds'),
    ({'init_joint_noise': 1.0}, 'init_joint_noise'),
    ({'num_cards': 5}, 'num_cards'),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EnvConfig(**kwargs)


def test_config_round_trips_through_yaml_dicts():
    cfg = EnvConfig(task='emoji', variant='ood_emoji', control_hz=20.0, image_size=(96, 128))
    assert from_dict(EnvConfig, to_dict(cfg)) == cfg
    assert dataclasses.replace(cfg, num_cards=3).num_cards == 3
    zoomed = EnvConfig(third_person=CameraView(eye=(0.9, 0.0, 0.6), target=(0.5, 0.0, 0.0), fovy=45.0))
    assert from_dict(EnvConfig, to_dict(zoomed)) == zoomed


@pytest.mark.parametrize('kwargs', [{'eye': (0.5, 0.0, 1.0), 'target': (0.5, 0.0, 0.0)},  # straight down
                                    {'eye': (1.0, 0.0, 0.5), 'target': (1.0, 0.0, 0.5)},
                                    {'eye': (1.0, 0.0)}, {'fovy': 0.0}])
def test_camera_view_rejects_degenerate_views(kwargs):
    with pytest.raises(ValueError, match='CameraView'):
        CameraView(**kwargs)


def test_camera_view_frames_the_third_person_image():
    def card_pixels(view: CameraView) -> float:
        env = make_env(EnvConfig(task='emoji', third_person=view, **_SMALL))
        image = env.reset(seed=0)['observation.images.third_person'].astype(int)
        env.close()
        return (image.min(axis=2) > 200).mean()  # the cards' near-white faces

    default = card_pixels(WIDE_VIEW)
    assert default > 0
    assert card_pixels(CameraView(eye=(0.95, 0.0, 0.6), target=(0.5, 0.0, 0.0), fovy=45.0)) > 2 * default


@pytest.mark.parametrize('task,variant', [('pick_place', 'train'), ('emoji', 'train')])
def test_both_cameras_render_sensible_images(task, variant):
    env = make_env(EnvConfig(task=task, variant=variant))
    obs = env.reset(seed=0)
    third, wrist = obs['observation.images.third_person'], obs['observation.images.wrist']
    for image in (third, wrist):
        assert image.shape == (224, 224, 3) and image.dtype == np.uint8
        assert image.std() > 15  # not blank
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
        assert (image.max(axis=2) < 10).mean() < 0.5  # mostly lit, not a black frame
    assert np.abs(third.astype(int) - wrist.astype(int)).mean() > 10
    # The arm moves in the images (the default view frames the table: the gripper enters it on the way down).
    for _ in range(10):
        obs, *_ = env.step(np.array([0.02, 0.0, -0.05, 0, 0, 0, 0]))
    assert np.abs(obs['observation.images.third_person'].astype(int) - third).mean() > 0.5
    env.close()


def test_emoji_textures_are_distinct():
    images = [_emoji.render_emoji(e, 64) for e in _emoji.EMOJI_TRAIN + _emoji.EMOJI_HELDOUT]
    assert len(_emoji.EMOJI_TRAIN) + len(_emoji.EMOJI_HELDOUT) >= 16
    assert not set(_emoji.EMOJI_TRAIN) & set(_emoji.EMOJI_HELDOUT)
    for image in images:
        assert image.shape == (64, 64, 3) and image.std() > 20
    flat = np.stack(images).reshape(len(images), -1).astype(float)
    dists = np.abs(flat[:, None] - flat[None]).mean(-1)
    assert dists[~np.eye(len(images), dtype=bool)].min() > 5
    names = [_emoji.emoji_name(e) for e in _emoji.EMOJI_TRAIN + _emoji.EMOJI_HELDOUT]
    assert 'smiling face with sunglasses' in names and len(set(names)) == len(names)


def test_emoji_instruction_names_a_card_on_the_table():
    env = make_env(EnvConfig(task='emoji', variant='ood_emoji', num_cards=3, **_SMALL))
    obs = env.reset(seed=2)
    target = env.task.target_emoji
    assert target in _emoji.EMOJI_HELDOUT
    assert obs['task'] == f'put the cube on the {_emoji.emoji_name(target)}'
    env.close()


def test_emoji_cards_report_the_scene():
    from maps_vla.sim.tasks.emoji_cards import SLOT_NAMES

    env = make_env(EnvConfig(task='emoji', num_cards=3, **_SMALL))
    for seed in range(4):
        env.reset(seed=seed)
        cards = env.task.cards(env.physics)
        assert len(cards) == 3 and len({c.emoji for c in cards}) == 3
        assert [c.slot for c in cards] == sorted({c.slot for c in cards}) and max(c.slot for c in cards) < len(SLOT_NAMES)
        ys = [c.position[1] for c in cards]
        assert ys == sorted(ys)  # slots run along +y
        assert cards[env.task.target_index].emoji == env.task.target_emoji
        goal = env.task.goal_position(env.physics)
        np.testing.assert_allclose(cards[env.task.target_index].position, goal[:2])
    env.close()


@pytest.mark.parametrize('on_target', [True, False])
def test_emoji_placement_on_a_card_decides_the_episode(on_target):
    # execution (on any card) vs recognition (on the named one): a cube set down on another card ends the episode
    # as a failure and names that card; on the named card it succeeds; in the air or on the table, neither
    env = make_env(EnvConfig(task='emoji', render=False, **_SMALL))
    env.reset(seed=1)
    open_hand = np.zeros(env.action_spec.dim)
    target = env.task.target_index
    _, _, terminated, _, info = env.step(open_hand)
    assert not terminated and info == {'success': False, 'placed_card': -1, 'named_card': target}
    card = target if on_target else (target + 1) % env.task.num_cards
    x, y = env.task.cards(env.physics)[card].position
    shape = env.task.object_shape()
    env.physics.set_free_body_pose('object', np.array([x, y, 0.004 + shape.half_height]), np.array([1.0, 0, 0, 0]))
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(open_hand)
        if terminated or truncated:
            break
    assert terminated and info == {'success': on_target, 'placed_card': card, 'named_card': target}
    env.close()


def test_compact_emoji_layout_matches_the_compact_pick_place_reach():
    # the cube where compact pick_place puts its object, the two cards side by side where it puts its plate
    from maps_vla.sim.config_env import EMOJI_LAYOUTS
    from maps_vla.sim.tasks.emoji_cards import CARD_HALF, SLOT_NAMES
    from maps_vla.sim.tasks.emoji_cards import EMOJI_LAYOUTS as LAYOUT_TABLE
    from maps_vla.sim.tasks.pick_place import COMPACT_OBJECT_REGION, COMPACT_PLATE_XY

    assert set(LAYOUT_TABLE) == set(EMOJI_LAYOUTS)
    env = make_env(EnvConfig(task='emoji', num_cards=2, emoji_layout='compact', render=False))
    for seed in range(12):
        env.reset(seed=seed)
        cube = env.physics.body_pos(env.task.object_body)
        (x0, x1), (y0, y1) = COMPACT_OBJECT_REGION
        assert x0 <= cube[0] <= x1 and y0 <= cube[1] <= y1
        cards = env.task.cards(env.physics)
        assert [SLOT_NAMES[c.slot] for c in cards] == ['right', 'left']
        (xa, ya), (xb, yb) = (c.position for c in cards)
        assert yb - ya > 2 * CARD_HALF[1]  # side by side, not overlapping
        assert abs((ya + yb) / 2 - COMPACT_PLATE_XY[1]) < 0.01 and abs(xa - COMPACT_PLATE_XY[0]) < 0.01
        assert ya - CARD_HALF[1] > cube[1] + 0.02  # the cube's square stays clear of the cards
    env.close()
    with pytest.raises(ValueError, match="num_cards must be 2 with emoji_layout 'compact'"):
        EnvConfig(task='emoji', emoji_layout='compact')
    with pytest.raises(ValueError, match='emoji_layout must be one of'):
        EnvConfig(task='emoji', emoji_layout='grid')


def test_compact_emoji_layout_shows_both_cards_to_the_default_camera():
    # the left card sits at the edge of the pick_place camera's view: at most its white border may graze the edge
    env = make_env(EnvConfig(task='emoji', num_cards=2, emoji_layout='compact', image_size=(84, 84)))
    for seed in range(6):
        image = env.reset(seed=seed)['observation.images.third_person'].astype(int)
        white = image.min(-1) > 200
        assert white[:, -1].sum() <= 4  # 3 px measured; a card cut by the edge shows a white column of ~10
        assert white.sum() > 200  # both cards' borders (280-410 px measured), not one
    env.close()


def test_missing_emoji_font_names_the_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match='fonts-noto-color-emoji'):
        make_env(EnvConfig(task='emoji', emoji_font=tmp_path / 'NoEmoji.ttf'))


def test_layouts_place_the_object_and_the_plate_where_they_say():
    def poses(layout):
        env = make_env(EnvConfig(layout=layout, render=False))
        out = []
        for seed in range(12):
            env.reset(seed=seed)
            body = env.physics.body_pos(env.task.object_body)
            out.append((body[0], body[1], *env.physics.model.body('plate').pos[:2]))
        env.close()
        return np.array(out)

    compact, wide = poses('compact'), poses('wide')
    assert (compact[:, 0] >= 0.44 - 1e-6).all() and (compact[:, 0] <= 0.56 + 1e-6).all()
    assert (compact[:, 1] >= -0.13 - 1e-6).all() and (compact[:, 1] <= -0.01 + 1e-6).all()
    np.testing.assert_allclose(compact[:, 2:], [[0.5, 0.15]] * 12)  # the plate stays put
    assert np.ptp(wide[:, 2:], axis=0).min() > 0.05 and np.ptp(wide[:, :2], axis=0).max() > 0.2
    with pytest.raises(ValueError, match='layout'):
        EnvConfig(layout='tiny')


def test_choice_puts_two_cubes_where_only_the_colour_word_tells_them_apart():
    env = make_env(EnvConfig(variant='choice', render=False))
    sides = []
    for seed in range(16):
        obs = env.reset(seed=seed)
        target, other = env.task.objects(env.physics)
        assert target.shape == other.shape == 'cube' and target.color != other.color
        assert obs['task'] == f'put the {target.color} cube on the plate'
        for obj in (target, other):  # both in the compact object region
            assert 0.44 - 1e-6 <= obj.xy[0] <= 0.56 + 1e-6 and -0.13 - 1e-6 <= obj.xy[1] <= -0.01 + 1e-6
        assert np.hypot(target.xy[0] - other.xy[0], target.xy[1] - other.xy[1]) >= 0.06 - 1e-6
        sides.append(target.xy[1] < other.xy[1])
    assert 4 <= sum(sides) <= 12  # the named cube is as often left as right
    env.close()


@pytest.mark.parametrize('lifted', ['object', 'distractor_0'])
def test_choice_ends_when_the_other_cube_is_picked_up(lifted):
    env = make_env(EnvConfig(variant='choice', render=False, **_SMALL))
    env.reset(seed=2)
    still = np.zeros(env.action_spec.dim)
    _, _, terminated, _, info = env.step(still)
    assert not terminated and (info['success'], info['lifted_object']) == (False, -1)
    tcp = env.physics.tcp_pos[:2]
    for key, body in (('target_distance', 'object'), ('other_distance', 'distractor_0')):
        assert info[key] == pytest.approx(np.linalg.norm(env.physics.body_pos(body)[:2] - tcp), abs=1e-4)
    x, y, z = env.physics.body_pos(lifted)
    env.physics.set_free_body_pose(lifted, np.array([x, y, z + 0.1]), np.array([1.0, 0, 0, 0]))
    _, _, terminated, _, info = env.step(still)
    assert info['lifted_object'] == (0 if lifted == 'object' else 1)
    assert terminated == (lifted != 'object') and not info['success']  # the named cube in the air is no choice
    env.close()


@pytest.mark.parametrize('task, variant, candidates', [('pick_place', 'choice', 2), ('emoji', 'train', 4)])
def test_a_requested_target_renames_the_same_scene(task, variant, candidates):
    env = make_env(EnvConfig(task=task, variant=variant, **_SMALL))
    assert env.task.num_targets == candidates
    drawn = env.reset(seed=5)
    pictures, instructions = [], set()
    for target in range(candidates):
        obs = env.reset(seed=5, target=target)
        pictures.append(obs['observation.images.third_person'])
        instructions.add(obs['task'])
    assert all(np.array_equal(p, pictures[0]) for p in pictures) and len(instructions) == candidates
    assert drawn['task'] in instructions and np.array_equal(drawn['observation.images.third_person'], pictures[0])
    if task == 'emoji':
        assert env.task.target_index == candidates - 1
    else:  # the named cube is the one the task judges
        assert obs['task'] == f'put the {env.task.objects(env.physics)[0].color} cube on the plate'
    with pytest.raises(ValueError, match=f'target {candidates} is not one of the {candidates} candidates'):
        env.reset(seed=5, target=candidates)
    env.close()


def test_one_object_variants_have_one_target():
    env = make_env(EnvConfig(render=False))
    assert env.task.num_targets == 1 and env.reset(seed=0, target=0)['task'].startswith('put the ')
    with pytest.raises(ValueError, match='target 1 is not one of the 1 candidates of pick_place/train'):
        env.reset(seed=0, target=1)
    env.close()
