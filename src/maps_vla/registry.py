"""String registries behind every `factory.py`: unknown names fail with the known ones and the closest match."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ['Registry', 'unknown_name_error']

T = TypeVar('T')


def unknown_name_error(kind: str, name: str, known: list[str]) -> ValueError:
    """A ValueError that quotes `name`, lists `known` and suggests the closest one."""
    hint = difflib.get_close_matches(name, known, n=1)
    did_you_mean = f' Did you mean {hint[0]!r}?' if hint else ''
    return ValueError(f'Unknown {kind} {name!r}. Known: {", ".join(sorted(known))}.{did_you_mean}')


class Registry(Generic[T]):
    """Maps names to objects; filled at import time by `@registry.register('name')`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            if name in self._items:
                raise ValueError(f'{self.kind} {name!r} is registered twice')
            self._items[name] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise unknown_name_error(self.kind, name, list(self._items)) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
