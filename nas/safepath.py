"""Names that become paths stay inside their folder (run names, variant labels and names).

A user value that names a file or folder under an output folder (``--name``, ``--label``,
``--budget NAME=MS``, ``--variant LABEL/NAME``) must be one plain path component: letters,
digits, ``_ - . +``, starting with a letter or digit, at most 128 characters. So ``../x``,
``a/b``, ``/etc``, ``~``, ``.hidden``, a backslash or a NUL are refused with one line that names
the option, before anything is written. `inside` checks a joined path as a last guard (it
also catches a symbolic link that leads out).

Example:
    >>> from nas.safepath import check_name
    >>> check_name("quickstart-2", "--name")
    'quickstart-2'
    >>> check_name("../etc", "--name")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nas.safepath.UnsafeNameError: --name: '../etc' is not a plain name (...): it would leave ...
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_NAME = 128
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class UnsafeNameError(ValueError):
    """A name that would not stay a single folder or file inside its output folder."""


def check_name(value: object, what: str) -> str:
    """``value`` when it is one plain path component, else UnsafeNameError naming ``what``."""
    if isinstance(value, str) and len(value) > MAX_NAME:
        raise UnsafeNameError(
            f"{what}: expected a name of at most {MAX_NAME} characters, got {value[:40]!r}..."
        )
    if not isinstance(value, str) or not _NAME.match(value):
        raise UnsafeNameError(
            f"{what}: {value!r} is not a plain name (letters, digits, '_', '-', '.', '+', "
            "starting with a letter or digit; no '/'): it would leave its folder"
        )
    return value


def check_relative(value: str, what: str) -> str:
    """``LABEL/NAME``: each ``/``-separated part a plain name (`check_name`)."""
    for part in str(value).split("/"):
        check_name(part, what if part == value else f"{what} {value!r}")
    return value


def inside(base: str | Path, *parts: str, what: str = "path") -> Path:
    """``base / parts...`` after checking that it resolves inside ``base`` (links followed)."""
    base = Path(base)
    target = base.joinpath(*parts)
    root = base.resolve()
    if not target.resolve().is_relative_to(root):
        raise UnsafeNameError(f"{what}: {target} leads outside {base}")
    return target


__all__ = ["MAX_NAME", "UnsafeNameError", "check_name", "check_relative", "inside"]
