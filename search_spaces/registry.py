"""Registry of search spaces by name: refuses duplicates, lists with glob patterns.

Example:
    >>> from search_spaces import get_space, list_spaces
    >>> list_spaces("yolo_nas*")
    ['yolo_nas', 'yolo_nas_pose']
    >>> get_space("yolo_nas", num_classes=3).describe()["task"]
    'detection'
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from search_spaces.base import SearchSpace, SpaceError

Factory = Callable[..., SearchSpace]
F = TypeVar("F", bound=Factory)

_SPACES: dict[str, Factory] = {}


def register_space(name: str) -> Callable[[F], F]:
    """Decorator registering a space class (or factory taking ``**overrides``) under ``name``.

    A name that is already registered is refused (ValueError), never silently replaced.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_space: expected a non-empty name, got {name!r}")

    def decorator(factory: F) -> F:
        if name in _SPACES:
            raise ValueError(f"search space {name!r} is already registered")
        _SPACES[name] = factory
        return factory

    return decorator


def list_spaces(pattern: str = "*") -> list[str]:
    """Names of the registered spaces matching a glob pattern, sorted."""
    return sorted(n for n in _SPACES if fnmatch.fnmatch(n, pattern))


def get_space(name: str, **overrides: Any) -> SearchSpace:
    """A space by name, narrowed or scaled by ``overrides`` (see each space's docs).

    Unknown names and bad overrides raise SpaceError naming the key.
    """
    try:
        factory = _SPACES[name]
    except (KeyError, TypeError):
        raise SpaceError(
            f"unknown search space {name!r} (known: {', '.join(list_spaces())})"
        ) from None
    return factory(**overrides)


__all__ = ["get_space", "list_spaces", "register_space"]
