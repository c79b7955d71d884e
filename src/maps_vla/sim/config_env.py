"""`EnvConfig`: everything that selects and shapes a sim environment (task, variant, rates, cameras, robot model)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = ['EnvConfig', 'CameraView', 'ACTION_KINDS', 'LAYOUTS', 'EMOJI_LAYOUTS', 'WIDE_VIEW']

ACTION_KINDS = ('ee_delta', 'joint_position')
LAYOUTS = ('wide', 'compact')
EMOJI_LAYOUTS = ('row', 'compact')  # keys of maps_vla.sim.tasks.emoji_cards.EMOJI_LAYOUTS


@dataclasses.dataclass(frozen=True)
class CameraView:
    """Where the fixed third-person camera sits and looks, in the robot base frame (m), and its field of view.

    The default frames the 'compact' layout from the front: object square and plate fill the view, a 4 cm cube is
    ~6 px wide at 84 px (the old workspace-wide view, `WIDE_VIEW`, left it ~3 px and a CPU-sized policy ignored the
    images: issue 13). Match it to the real camera's placement, or frame another region.
    """

    eye: tuple[float, float, float] = (0.86, 0.04, 0.5)
    target: tuple[float, float, float] = (0.5, 0.04, 0.0)
    fovy: float = 42.0  # vertical field of view, degrees

    def __post_init__(self) -> None:
        if len(self.eye) != 3 or len(self.target) != 3:
            raise ValueError(f'CameraView.eye and target must be (x, y, z), got {self.eye!r} and {self.target!r}')
        forward = [t - e for t, e in zip(self.target, self.eye)]
        if sum(f * f for f in forward) < 1e-6 or forward[0] ** 2 + forward[1] ** 2 < 1e-9:
            raise ValueError(f'CameraView must look at a point away from its eye and not straight down (z up sets '
                             f'its roll), got eye {self.eye!r}, target {self.target!r}')
        if not 1.0 <= self.fovy <= 170.0:
            raise ValueError(f'CameraView.fovy must be in [1, 170] degrees, got {self.fovy}')


# the whole 'wide' workspace from the front right (the default view before the 'compact' layout)
WIDE_VIEW = CameraView(eye=(1.02, 0.28, 0.7), target=(0.5, -0.06, 0.03), fovy=52.0)


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Config of `make_env`. Validated on construction; see `maps_vla.sim.TASK_VARIANTS` for tasks and variants."""

    task: str = 'pick_place'  # registered task: 'pick_place' or 'emoji'
    variant: str = 'train'  # 'train' or one of the task's held-out (OOD) variants
    control_hz: float = 10.0  # action rate; physics_hz / control_hz must be a whole number
    physics_hz: float = 500.0  # MuJoCo step rate
    image_size: tuple[int, int] = (224, 224)  # (height, width) of both camera images
    render: bool = True  # False leaves the image keys out of observations (state-only rollouts, speed tests)
    action_kind: str = 'ee_delta'  # 'ee_delta' [dx dy dz droll dpitch dyaw gripper] | 'joint_position' [q1..q7 gripper]
    max_pos_step: float = 0.05  # m; EE delta translations are clipped to this per step and axis
    max_rot_step: float = 0.25  # rad; EE delta rotations are clipped to this per step and axis
    episode_seconds: float = 20.0  # episodes are truncated after this much simulated time
    terminate_on_success: bool = True  # end the episode (terminated=True) once the task succeeds
    init_joint_noise: float = 0.02  # rad; uniform noise added to the home arm pose at reset
    seed: int = 0  # seeds the episode RNG when reset() is called without a seed
    robot_xml: Path | None = None  # local mujoco_menagerie franka_emika_panda/panda.xml; None = generated model
    num_cards: int = 4  # emoji task: cards on the table (2..4; 2 with emoji_layout 'compact')
    # emoji task: 'row' (cards in a row across the table) or 'compact' (two cards at pick_place's plate, the cube in
    # its compact square: the CPU prior's reach); see maps_vla.sim.tasks.emoji_cards
    emoji_layout: str = 'row'
    third_person: CameraView = CameraView()  # the fixed camera's pose and field of view
    # pick_place randomisation: 'compact' (object in a 12 x 12 cm square, yaw within +-30 deg, plate fixed: the
    # setting the CPU prior learns in) or 'wide' (object and plate anywhere on 24 x 44 cm, any yaw; with `WIDE_VIEW`)
    layout: str = 'compact'
    emoji_font: Path | None = None  # NotoColorEmoji.ttf; None = Debian fonts-noto-color-emoji's path

    def __post_init__(self) -> None:
        from maps_vla.sim.tasks import TASKS  # the registry; imported here because tasks import this module

        task_cls = TASKS.get(self.task)  # ValueError with the known names and the closest match
        if self.variant not in task_cls.variants:
            raise ValueError(f'EnvConfig.variant {self.variant!r} is not a variant of task {self.task!r}; '
                             f'choose one of {", ".join(task_cls.variants)}')
        if self.physics_hz <= 0 or self.control_hz <= 0:
            raise ValueError(f'EnvConfig.control_hz and physics_hz must be > 0, got {self.control_hz} and '
                             f'{self.physics_hz}')
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f'EnvConfig.physics_hz / control_hz must be a whole number >= 1, got {self.physics_hz} '
                             f'/ {self.control_hz} = {ratio:g}')
        if len(self.image_size) != 2 or not all(isinstance(s, int) and 16 <= s <= 2048 for s in self.image_size):
            raise ValueError(f'EnvConfig.image_size must be (height, width) with ints in 16..2048, '
                             f'got {self.image_size!r}')
        if self.action_kind not in ACTION_KINDS:
            raise ValueError(f'EnvConfig.action_kind must be one of {ACTION_KINDS}, got {self.action_kind!r}')
        for name in ('max_pos_step', 'max_rot_step', 'episode_seconds'):
            if getattr(self, name) <= 0:
                raise ValueError(f'EnvConfig.{name} must be > 0, got {getattr(self, name)}')
        if not 0 <= self.init_joint_noise <= 0.2:
            raise ValueError(f'EnvConfig.init_joint_noise must be in [0, 0.2] rad, got {self.init_joint_noise}')
        if self.layout not in LAYOUTS:
            raise ValueError(f'EnvConfig.layout must be one of {LAYOUTS}, got {self.layout!r}')
        if not 2 <= self.num_cards <= 4:
            raise ValueError(f'EnvConfig.num_cards must be in 2..4, got {self.num_cards}')
        if self.emoji_layout not in EMOJI_LAYOUTS:
            raise ValueError(f'EnvConfig.emoji_layout must be one of {EMOJI_LAYOUTS}, got {self.emoji_layout!r}')
        if self.emoji_layout == 'compact' and self.num_cards != 2:
            raise ValueError(f"EnvConfig.num_cards must be 2 with emoji_layout 'compact' (it has two card places), "
                             f'got {self.num_cards}')

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return round(self.physics_hz / self.control_hz)

    @property
    def max_steps(self) -> int:
        """Control steps before truncation."""
        return max(1, round(self.episode_seconds * self.control_hz))
