"""GrinningFace-style emoji task: put the cube on the card showing the named emoji.

Several cards (`EnvConfig.num_cards`, default 4) lie in a row on the table, each with a different emoji drawn
from the variant's set: `emoji.EMOJI_TRAIN` for 'train', `emoji.EMOJI_HELDOUT` for 'ood_emoji'. The instruction
names the target by its Unicode name ("put the cube on the smiling face with sunglasses"). Success: the cube
rests on the target card, released. Resting on another card ends the episode as a failure; each step's info
names the card the cube rests on (`placed_card`, -1 for none), which tells execution (placed on any card) from
recognition (placed on the named one), GrinningFace's two success measures.

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
from maps_vla.sim.tasks.pick_place import TRAIN_COLORS

if TYPE_CHECKING:
    from maps_vla.sim.config_env import EnvConfig

__all__ = ['EmojiCards', 'Card', 'SLOT_NAMES', 'INSTRUCTION']

CARD_HALF = (0.055, 0.055, 0.002)  # m; 11 cm square cards, 4 mm thick
_SLOTS_Y = (-0.2, -0.0667, 0.0667, 0.2)  # card centres along y (a row at _CARD_X); episodes pick num_cards of them
_CARD_X = 0.57
_CARD_JITTER = 0.01  # m, uniform on x and y
_CARD_YAW_JITTER = np.radians(10.0)
_CUBE_REGION = ((0.36, 0.44), (-0.15, 0.15))
_TEXTURE_SIZE = 128
# where each slot lies, as seen from the robot base looking along +x (slot 0 is at -y, the robot's right)
SLOT_NAMES = ('far right', 'right', 'left', 'far left')
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
            card = spec.worldbody.add_body(name=f'card_{c}', pos=[_CARD_X, _SLOTS_Y[c], CARD_HALF[2]])
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
        slots = np.sort(random.choice(len(_SLOTS_Y), size=self.num_cards, replace=False))
        for c, (e, s) in enumerate(zip(chosen, slots)):
            jitter = random.uniform(-_CARD_JITTER, _CARD_JITTER, size=2)
            m.body_pos[self._card_bodies[c]] = [_CARD_X + jitter[0], _SLOTS_Y[s] + jitter[1], CARD_HALF[2]]
            m.body_quat[self._card_bodies[c]] = yaw_quat(random.uniform(-_CARD_YAW_JITTER, _CARD_YAW_JITTER))
            m.geom_matid[self._card_geoms[c]] = self._materials[e]
        self._cards = [(int(e), int(s)) for e, s in zip(chosen, slots)]
        self._target = self.draw_target(random)
        self.target_emoji = self.emojis[chosen[self._target]]
        colors = list(TRAIN_COLORS.values())
        m.geom_rgba[self._cube_geom] = (*colors[random.integers(len(colors))], 1.0)
        xy = np.array([random.uniform(*_CUBE_REGION[0]), random.uniform(*_CUBE_REGION[1])])
        physics.set_free_body_pose(self.object_body, [*xy, self._shape.half_height],
                                   yaw_quat(random.uniform(-np.pi / 4, np.pi / 4)))
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
        return {'placed_card': self.placed_card(physics)}
