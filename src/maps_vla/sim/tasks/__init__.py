"""Sim tasks, registered by name: `TASKS.get('pick_place')` -> the Task class."""

from maps_vla.registry import Registry
from maps_vla.sim.tasks.base import Task
from maps_vla.sim.tasks.emoji_cards import EmojiCards
from maps_vla.sim.tasks.pick_place import PickPlace

__all__ = ['TASKS', 'Task', 'PickPlace', 'EmojiCards']

TASKS: Registry[type[Task]] = Registry('sim task')
for _cls in (PickPlace, EmojiCards):
    TASKS.register(_cls.name)(_cls)
