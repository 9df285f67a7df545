"""A tiny name -> factory registry so apps (and users' own projects) can plug in components."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; ``@REG.register("name")`` adds one, ``REG.build(name, **kw)`` makes one."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            key = name or factory.__name__
            if key in self._items:
                raise KeyError(f"{self.kind} {key!r} is already registered")
            self._items[key] = factory
            return factory

        return wrap

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._items:
            raise UsageError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._items[name]

    def build(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
