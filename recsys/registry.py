"""One registry per family of interchangeable parts, keyed by each class's own `name`.

The families are candidate sources, rankers, re-rank steps and online policies. Every place
that offers a choice reads its family's registry: configuration checks, the command line's
choices, the app's pickers and the contract tests (which fail when a registered class is left
out of them). A class registers itself with the `@REGISTRY.register` decorator; a class
attribute (`name`, or the one the registry is told) is the key, so a class and its registry
cannot disagree about what it is called.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Generic, Iterator, TypeVar

__all__ = ["Registry"]

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes of one family by name; `key` is the class attribute holding it; `loader` imports the modules
    that register them (on first use)."""

    def __init__(self, family: str, key: str = "name", loader: Callable[[], None] | None = None) -> None:
        self.family = family
        self.key = key
        self._loader = loader
        self._loaded = loader is None
        self._loading = threading.Lock()
        self._classes: dict[str, T] = {}

    def register(self, cls: T) -> T:
        """Class decorator: file `cls` under its own name (the class attribute `key`)."""
        name = cls.__dict__.get(self.key)
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"{cls.__name__} needs its own class attribute `{self.key}` (an identifier) to join "
                            f"the {self.family} registry")
        other = self._classes.get(name)
        if other is not None and other.__qualname__ != cls.__qualname__:
            raise ValueError(f"two {self.family} classes named {name!r}: {other.__qualname__} and {cls.__qualname__}")
        self._classes[name] = cls
        return cls

    def _load(self) -> None:
        if not self._loaded:
            with self._loading:  # a second thread waits for the whole family, never sees half of it
                if not self._loaded:
                    assert self._loader is not None
                    self._loader()
                    self._loaded = True

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        self._load()
        return tuple(self._classes)

    def get(self, name: str) -> T:
        """The class registered as `name`; a ValueError lists the choices otherwise."""
        self._load()
        try:
            return self._classes[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.family} {name!r}; choose from {', '.join(self._classes)}") from None

    def create(self, name: str, **params: Any) -> Any:
        """An instance of the class registered as `name`, with `params` as its configuration."""
        return self.get(name)(**params)

    def check(self, names, what: str | None = None) -> None:
        """Raise a ValueError naming the unknown entries of `names` and the choices."""
        self._load()
        unknown = [n for n in names if n not in self._classes]
        if unknown:
            raise ValueError(f"unknown {what or self.family}(s) {unknown}; choose from {', '.join(self._classes)}")

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return list(self._classes.items())

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {list(self._classes)})"
