"""Secrets in experiment files: environment references and masking (docs/search.md).

An experiment's Optuna storage URL may hold a password. Two ways keep it off disk:

- ``storage: postgresql://nac:${OPENNAC_DB_PASSWORD}@db/nac`` (any ``${NAME}`` in the URL)
  or ``storage_env: OPENNAC_STUDY_URL`` (the whole URL): the experiment keeps the reference,
  which is what the run directory holds; the value is read from the environment only when the
  study is opened (`storage_url`). A variable that is not set is an error naming it.
- a literal password (``postgresql://nac:hunter2@db/nac``) works, but every file OpenNAC
  writes and every message it prints shows it masked (``postgresql://nac:***@db/nac``):
  `mask` is applied by each writer (resolved experiment, run.json, progress and error lines).

The secrets of a URL opened through `storage_url` (its password, secret query values; 8
characters or more) are remembered for this process, so that `mask_text` also hides them where
they appear bare (a driver's error message, for instance).

Example:
    >>> from nas.secrets import mask_text
    >>> mask_text("postgresql://nac:hunter2@db:5432/nac?sslmode=require&password=x")
    'postgresql://nac:***@db:5432/nac?sslmode=require&password=***'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
# ${NAME}: a reference to an environment variable.
_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# scheme://user:PASSWORD@ -- up to the last '@' (an unescaped '@' in a password is masked too;
# masking a little more than the password is the safe side).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)(?P<pw>[^\s'\"]*)@")
# ?password=... / &token=... in a URL's query (or a DSN's key=value list).
_QUERY = re.compile(
    r"(?P<head>(?:^|[?&;\s])(?:password|passwd|pwd|secret|token|api_key|apikey|access_key"
    r"|secret_key|auth_token)=)(?P<pw>[^&;\s'\"]*)",
    re.IGNORECASE,
)
_known: set[str] = set()  # secret values read from the environment by this process
# Bare values shorter than this are not masked (they would mask ordinary words and paths);
# in a URL they are, by its form.
_MIN_KNOWN = 8


class SecretError(ValueError):
    """A reference to an environment variable that cannot be resolved; names the variable."""


def mask_text(text: str) -> str:
    """``text`` with URL passwords, secret query values and remembered secrets masked."""
    if not isinstance(text, str) or not text:
        return text
    for value in sorted(_known, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: m["head"] + _hide(m["pw"]) + "@", text)
    return _QUERY.sub(lambda m: m["head"] + _hide(m["pw"]), text)


def _hide(value: str) -> str:
    """MASK, except for nothing and a bare ``${NAME}`` (a reference, not a secret)."""
    return value if not value or _ENV_REF.fullmatch(value) else MASK


def mask(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, tuples, strings) with every string passed through
    `mask_text`; anything else is returned as it is."""
    if isinstance(obj, str):
        return mask_text(obj)
    if isinstance(obj, Mapping):
        return {k: mask(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(mask(v) for v in obj)
    return obj


def has_secret(text: str | None) -> bool:
    """Whether ``text`` holds something `mask_text` would hide."""
    return bool(text) and mask_text(text) != text


def env_names(text: str | None) -> list[str]:
    """The ``${NAME}`` references in ``text`` (in order)."""
    return _ENV_REF.findall(text or "")


def expand_env(text: str, where: str) -> str:
    """``text`` with each ``${NAME}`` replaced by the environment variable's value.

    SecretError naming ``where`` and the variable when one is not set, or a name is not a
    variable name.
    """

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if not _ENV_NAME.match(name):
            raise SecretError(f"{where}: ${{{name}}}: expected an environment variable name")
        return _read(name, where)

    return _ENV_REF.sub(value, text)


def check_storage(storage: str | None, storage_env: str | None, where: str) -> None:
    """SecretError unless ``storage`` / ``storage_env`` are well formed (not whether the
    variables are set: that is checked when the study is opened, maybe on another machine)."""
    if storage and storage_env:
        raise SecretError(f"{where}storage_env: expected 'storage' or 'storage_env', not both")
    if storage_env is not None and not _ENV_NAME.match(storage_env):
        raise SecretError(
            f"{where}storage_env: expected an environment variable name, got {storage_env!r}"
        )
    for name in env_names(storage):
        if not _ENV_NAME.match(name):
            raise SecretError(
                f"{where}storage: ${{{name}}}: expected an environment variable name"
            )


def storage_url(storage: str | None, storage_env: str | None, where: str) -> str | None:
    """The Optuna storage URL to open: ``storage`` with its ``${NAME}`` expanded, or the value
    of the variable ``storage_env``; None when neither is set (SQLite in the run directory).

    A URL whose password was masked when it was written (a run directory's experiment.yaml)
    cannot be opened: the SecretError says how to give it again.
    """
    if storage_env:
        return _remember(_read(storage_env, f"{where}storage_env"))
    if not storage:
        return None
    if f":{MASK}@" in storage or f"={MASK}" in storage:
        raise SecretError(
            f"{where}storage: {storage}: the password was masked when this file was written; "
            "put the URL in an environment variable and name it in the file "
            "(storage_env: NAME, or storage: ...${NAME}...)"
        )
    return _remember(expand_env(storage, f"{where}storage"))


def _read(name: str, where: str) -> str:
    if not _ENV_NAME.match(name or ""):
        raise SecretError(f"{where}: expected an environment variable name, got {name!r}")
    value = os.environ.get(name)
    if value is None:
        raise SecretError(f"{where}: environment variable {name} is not set")
    return value


def _remember(url: str) -> str:
    """Remember the secrets of ``url`` (its password, its secret query values) so that
    `mask_text` hides them where they appear bare; returns ``url``."""
    found = [m["pw"] for m in _USERINFO.finditer(url)] + [m["pw"] for m in _QUERY.finditer(url)]
    _known.update(v for v in found if len(v) >= _MIN_KNOWN and v != MASK)
    return url


__all__ = [
    "MASK",
    "SecretError",
    "check_storage",
    "env_names",
    "expand_env",
    "has_secret",
    "mask",
    "mask_text",
    "storage_url",
]
