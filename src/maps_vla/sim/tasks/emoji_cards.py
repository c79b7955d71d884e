"""GrinningFace-style emoji task: put the cube on the card showing the named emoji.

Several cards (`EnvConfig.num_cards`, default 4) lie on the table, each with a different emoji drawn
from the variant's set: `emoji.EMOJI_TRAIN` for 'train', `emoji.EMOJI_HELDOUT` for 'ood_emoji'. The instruction
names the target by its Unicode name ("put the cube on the smiling face with sunglasses"). Success: the cube
rests on the target card, released. Resting on another card ends the episode as a failure; each step's info
names the card the cube rests on (`placed_card`, -1 for none) and the named one (`named_card`), which tells
execution (placed on any card) from recognition (placed on the named one), GrinningFace's two success measures.

Two layouts (`EnvConfig.emoji_layout`): 'row' puts up to four cards in a row across the table behind an 8 x 30 cm
cube region; 'compact' puts two cards side by side where pick_place's compact layout has its plate, and the cube in
that layout's 12 x 12 cm square, so a prior trained on compact pick_place only has to learn which card, not a new
reach (grinningface.md, session 14).

Every emoji of the variant gets its texture and material when the model is built; an episode only switches the
cards' materials (`model.geom_matid`), so nothing is re-uploaded to the renderer between episodes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from maps_vla.sim import emoji as _emoji
from maps_vla.sim.physics import Physics
from maps_vla.sim.tasks.base import SHAPES, ObjectShape, Task, yaw_quat
from maps_vla.sim.tasks.pick_place import COMPACT_OBJECT_REGION, COMPACT_PLATE_XY, COMPACT_YAW, TRAIN_COLORS

if TYPE_CHECKING:
    from maps_vla.sim.config_env import EnvConfig

__all__ = ['EmojiCards', 'Card', 'SLOT_NAMES', 'INSTRUCTION', 'EMOJI_LAYOUTS', 'CARD_HALF']

CARD_HALF = (0.055, 0.055, 0.002)  # m; 11 cm square cards, 4 mm thick
_TEXTURE_SIZE = 128
# where each slot lies, as seen from the robot base looking along +x (slot 0 is at -y, the robot's right)
SLOT_NAMES = ('far right', 'right', 'left', 'far left')


@dataclasses.dataclass(frozen=True)
class _Layout:
    slots: dict[int, tuple[float, float]]  # index into SLOT_NAMES -> card centre (x, y), m; increasing y
    cube_region: tuple[tuple[float, float], tuple[float, float]]  # x, y ranges of the cube centre, m
    cube_yaw: float  # the cube's yaw is uniform in +-this, rad
    card_jitter: float = 0.01  # m, uniform on each card's x and y
    card_yaw: float = np.radians(10.0)  # each card's yaw is uniform in +-this, rad


EMOJI_LAYOUTS = {
    'row': _Layout(slots={0: (0.57, -0.2), 1: (0.57, -0.0667), 2: (0.57, 0.0667), 3: (0.57, 0.2)},
                   cube_region=((0.36, 0.44), (-0.15, 0.15)), cube_yaw=np.pi / 4),
    # the two cards straddle pick_place's plate point, 7 mm apart and shifted 3.5 mm right so that the left one
    # stays in the default camera's view; slots 'right' and 'left' (words the prior's tokenizer knows)
    'compact': _Layout(slots={1: (COMPACT_PLATE_XY[0], COMPACT_PLATE_XY[1] - 0.062),
                              2: (COMPACT_PLATE_XY[0], COMPACT_PLATE_XY[1] + 0.055)},
                       cube_region=COMPACT_OBJECT_REGION, cube_yaw=COMPACT_YAW,
                       card_jitter=0.003, card_yaw=np.radians(3.0)),
}
INSTRUCTION = 'put the cube on the {name}'  # name: the target emoji's lower-cased Unicode name


@dataclasses.dataclass(frozen=True)
class Card:
    """One card of the current episode (privileged scene facts for experts, probes and VL data)."""

    emoji: str  # the emoji character on the card
    slot: int  # index into SLOT_NAMES
    position: tuple[float, float]  # (x, y) of the card centre in the base frame, m


class EmojiCards(Task):
    """Put the cube on the card with the named emoji."""

    name = 'emoji'
    variants = ('train', 'ood_emoji')

    def __init__(self, cfg: EnvConfig) -> None:
        super().__init__(cfg)
        self.emojis = _emoji.EMOJI_TRAIN if self.variant == 'train' else _emoji.EMOJI_HELDOUT
        self.num_cards = cfg.num_cards
        self._layout = EMOJI_LAYOUTS[cfg.emoji_layout]
        self._slots = sorted(self._layout.slots)
        self._target = 0
        self._cards: list[tuple[int, int]] = []  # (emoji index, slot) per card of the episode
        self._shape = SHAPES['cube']

    def build(self, spec: mujoco.MjSpec) -> None:
        for i, char in enumerate(self.emojis):
            image = _emoji.render_emoji(char, _TEXTURE_SIZE, self.cfg.emoji_font)
            # The card's top face shows the texture with image rows along -x; flip so the emoji's top points
            # at the robot, i.e. it is upright in the third-person view.
            tex = spec.add_texture(name=f'emoji_{i}', type=mujoco.mjtTexture.mjTEXTURE_2D, width=_TEXTURE_SIZE,
                                   height=_TEXTURE_SIZE, nchannel=3)
            tex.data = np.ascontiguousarray(image[::-1]).tobytes()
            mat = spec.add_material(name=f'emoji_{i}', specular=0.05, shininess=0.05)
            mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = f'emoji_{i}'
        for c in range(self.num_cards):
            card = spec.worldbody.add_body(name=f'card_{c}', pos=[*self._layout.slots[self._slots[c]], CARD_HALF[2]])
            card.add_geom(name=f'card_{c}', type=mujoco.mjtGeom.mjGEOM_BOX, size=list(CARD_HALF), material='emoji_0')
        cube = spec.worldbody.add_body(name=self.object_body, pos=[0.4, 0.0, 0.1])
        cube.add_freejoint()
        cube.add_geom(name=f'{self.object_body}_cube', type=self._shape.geom, size=list(self._shape.size), mass=0.05,
                      rgba=[0.85, 0.1, 0.1, 1.0], friction=[1.0, 0.005, 0.0001])

    def bind(self, physics: Physics) -> None:
        m = physics.model
        self._materials = np.array([m.material(f'emoji_{i}').id for i in range(len(self.emojis))])
        self._card_bodies = np.array([m.body(f'card_{c}').id for c in range(self.num_cards)])
        self._card_geoms = np.array([m.geom(f'card_{c}').id for c in range(self.num_cards)])
        self._cube_geom = m.geom(f'{self.object_body}_cube').id

    def initialize_episode(self, physics: Physics, random: np.random.Generator) -> None:
        m = physics.model
        chosen = random.choice(len(self.emojis), size=self.num_cards, replace=False)
        slots = np.sort(random.choice(self._slots, size=self.num_cards, replace=False))
        for c, (e, s) in enumerate(zip(chosen, slots)):
            jitter = random.uniform(-self._layout.card_jitter, self._layout.card_jitter, size=2)
            m.body_pos[self._card_bodies[c]] = [*(np.array(self._layout.slots[s]) + jitter), CARD_HALF[2]]
            m.body_quat[self._card_bodies[c]] = yaw_quat(random.uniform(-self._layout.card_yaw, self._layout.card_yaw))
            m.geom_matid[self._card_geoms[c]] = self._materials[e]
        self._cards = [(int(e), int(s)) for e, s in zip(chosen, slots)]
        self._target = self.draw_target(random)
        self.target_emoji = self.emojis[chosen[self._target]]
        colors = list(TRAIN_COLORS.values())
        m.geom_rgba[self._cube_geom] = (*colors[random.integers(len(colors))], 1.0)
        region = self._layout.cube_region
        xy = np.array([random.uniform(*region[0]), random.uniform(*region[1])])
        yaw = self._layout.cube_yaw
        physics.set_free_body_pose(self.object_body, [*xy, self._shape.half_height],
                                   yaw_quat(random.uniform(-yaw, yaw)))
        self._instruction = INSTRUCTION.format(name=_emoji.emoji_name(self.target_emoji))

    @property
    def num_targets(self) -> int:
        return self.num_cards

    @property
    def target_index(self) -> int:
        """Index into `cards()` of the card named by the instruction."""
        return self._target

    def cards(self, physics: Physics) -> list[Card]:
        """The episode's cards in card order (their slots increase along +y)."""
        return [Card(self.emojis[e], s, tuple(float(v) for v in physics.model.body_pos[self._card_bodies[c]][:2]))
                for c, (e, s) in enumerate(self._cards)]

    def object_shape(self) -> ObjectShape:
        return self._shape

    def goal_position(self, physics: Physics) -> np.ndarray:
        card = physics.model.body_pos[self._card_bodies[self._target]]
        return np.array([card[0], card[1], 2 * CARD_HALF[2] + self._shape.half_height])

    def _rests_on_card(self, physics: Physics, index: int) -> bool:
        card = self._card_bodies[index]
        rot = physics.body_rot(physics.model.body(card).name)
        local = rot.T @ (physics.body_pos(self.object_body) - physics.data.xpos[card])
        inside = bool(np.all(np.abs(local[:2]) < np.array(CARD_HALF[:2])))
        return self._resting_on(physics, 2 * CARD_HALF[2], inside)

    def placed_card(self, physics: Physics) -> int:
        """Index into `cards()` of the card the cube rests on, released; -1 when it rests on none."""
        return next((c for c in range(self.num_cards) if self._rests_on_card(physics, c)), -1)

    def is_success(self, physics: Physics) -> bool:
        return self._rests_on_card(physics, self._target)

    def is_failure(self, physics: Physics) -> bool:
        """The cube fell off the table, or it rests on a card other than the named one (the choice is made)."""
        return super().is_failure(physics) or self.placed_card(physics) not in (-1, self._target)

    def step_info(self, physics: Physics) -> dict[str, Any]:
        return {'placed_card': self.placed_card(physics), 'named_card': self._target}
