"""Gamepad teleop through pygame's SDL2 joystick API (pygame is optional: `pip install pygame`).

Left stick moves in x/y, right stick in z (up/down) and yaw (left/right), the D-pad rolls and pitches; buttons
toggle the gripper and control episodes (layout in `GamepadConfig`). Sticks are proportional: a half-deflected
stick moves at half `pos_speed`, after the deadband.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from maps_vla.teleop.config_gamepad import GamepadConfig
from maps_vla.teleop.device import TeleopCommand, TeleopDevice, TeleopEvent, apply_deadband, import_optional

__all__ = ['GamepadDevice']

logger = logging.getLogger(__name__)


class GamepadDevice(TeleopDevice):
    """A gamepad read through pygame.

    Args:
        config: layout, speeds and deadband.
        joystick: an already opened object with pygame's Joystick methods (get_axis, get_button, get_hat,
            get_numaxes, get_numbuttons, get_numhats); default: open `pygame.joystick.Joystick(config.index)` on
            connect. Tests pass a fake here.
    """

    def __init__(self, config: GamepadConfig | None = None, joystick: Any = None) -> None:
        super().__init__()
        self.config = config or GamepadConfig()
        self._joystick = joystick
        self._owns_pygame = joystick is None
        self._pygame: Any = None
        self._buttons: dict[int, bool] = {}
        self._gripper = 0.0

    def _connect(self) -> None:
        cfg = self.config
        if self._owns_pygame:
            os.environ.setdefault('PYGAME_HIDE_SUPPORT_PROMPT', '1')  # no banner in the operator's terminal
            pygame = import_optional('pygame', 'pygame', 'gamepad')
            if not os.environ.get('DISPLAY') and not os.environ.get('WAYLAND_DISPLAY'):
                os.environ.setdefault('SDL_VIDEODRIVER', 'dummy')  # SDL events need a video driver, not a window
            os.environ.setdefault('SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS', '1')  # the terminal has the focus
            pygame.display.init()
            pygame.joystick.init()
            count = pygame.joystick.get_count()
            if cfg.index >= count:
                pygame.quit()
                raise RuntimeError(f'No gamepad with index {cfg.index}: pygame sees {count} joystick(s). Plug one '
                                   'in, check that /dev/input/js* or event* is readable by you, or set '
                                   'GamepadConfig.index')
            self._pygame = pygame
            self._joystick = pygame.joystick.Joystick(cfg.index)
            self._joystick.init()
            logger.info('gamepad %d: %s', cfg.index, self._joystick.get_name())
        js = self._joystick
        axes = (cfg.axis_x, cfg.axis_y, cfg.axis_z, cfg.axis_yaw)
        buttons = (cfg.button_gripper, cfg.button_start_stop, cfg.button_discard, cfg.button_rerecord, cfg.button_quit)
        if max(axes) >= js.get_numaxes() or max(buttons) >= js.get_numbuttons() or cfg.hat >= js.get_numhats():
            self._close()
            raise RuntimeError(f'The gamepad has {js.get_numaxes()} axes, {js.get_numbuttons()} buttons and '
                               f'{js.get_numhats()} hats; GamepadConfig asks for axes {axes}, buttons {buttons}, '
                               f'hat {cfg.hat}: set the indices for this pad')
        # Buttons already held at connect must be released once before they count.
        self._buttons = {b: bool(js.get_button(b)) for b in buttons}
        self.reset()

    def _close(self) -> None:
        if self._owns_pygame and self._pygame is not None:
            self._pygame.quit()
            self._pygame, self._joystick = None, None

    def reset(self) -> None:
        self._gripper = 0.0

    def _pressed(self, button: int) -> bool:
        """True once per press (on the transition to down)."""
        down = bool(self._joystick.get_button(button))
        was = self._buttons.get(button, False)
        self._buttons[button] = down
        return down and not was

    def _read(self) -> TeleopCommand:
        cfg, js = self.config, self._joystick
        if self._pygame is not None:
            self._pygame.event.pump()  # refresh SDL's joystick state
        raw = np.array([js.get_axis(a) for a in (cfg.axis_x, cfg.axis_y, cfg.axis_z, cfg.axis_yaw)], dtype=np.float64)
        sticks = apply_deadband(np.where(cfg.invert, -raw, raw), cfg.deadband)
        hat_x, hat_y = js.get_hat(cfg.hat) if cfg.hat >= 0 else (0, 0)
        delta = np.array([cfg.pos_speed * sticks[0], cfg.pos_speed * sticks[1], cfg.pos_speed * sticks[2],
                          cfg.rot_speed * hat_x, cfg.rot_speed * hat_y, cfg.rot_speed * sticks[3]])
        if self._pressed(cfg.button_gripper):
            self._gripper = 1.0 - self._gripper
        events = tuple(event for button, event in ((cfg.button_start_stop, TeleopEvent.START_STOP),
                                                   (cfg.button_discard, TeleopEvent.DISCARD),
                                                   (cfg.button_rerecord, TeleopEvent.RERECORD),
                                                   (cfg.button_quit, TeleopEvent.QUIT)) if self._pressed(button))
        return TeleopCommand(delta=delta, gripper=self._gripper, events=events)
