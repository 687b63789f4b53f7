"""Helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from nas.cli import CliError


def resolve_arch(name_or_file: str) -> tuple[Any, str]:
    """A preset name or a frozen file -> (ArchSpec, display name). Errors become CliError."""
    from models import ArchFileError, get_preset, list_presets, load_arch_record

    path = Path(name_or_file)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        try:
            record = load_arch_record(path)
        except ArchFileError as exc:
            raise CliError(str(exc)) from None
        return record.spec, record.name or path.stem
    try:
        return get_preset(name_or_file), name_or_file
    except KeyError:
        raise CliError(
            f"{name_or_file!r} is neither a preset nor an architecture file "
            f"(presets: {', '.join(list_presets())})"
        ) from None


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=None, sort_keys=True, default=str))


def print_help_without_action(parser: argparse.ArgumentParser) -> None:
    """Make ``opennac GROUP`` with no sub-action print the group's help and exit 2."""

    def _show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=_show)


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Refuse, in one line (CliError, exit 2), an output folder that cannot be used: a path
    that exists as a file (or lies under one), or a folder that cannot be written. Nothing is
    created: a missing folder is fine when its nearest existing parent is writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CliError(f"{p}: the {what} exists as a file; give a folder path")
    _check_writable(p, p, what)
    return p


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Refuse, in one line, an output file path that is a folder, lies under a file, or whose
    folder cannot be written. Nothing is created."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{p}: the {what} is an existing folder; give a file path")
    _check_writable(p.parent, p, what)
    return p


def _check_writable(folder: Path, target: Path, what: str) -> None:
    import tempfile

    existing = folder
    while not existing.exists():  # the nearest existing ancestor is where writing starts
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise CliError(f"{target}: cannot write the {what}: {existing} is a file, not a folder")
    probe = existing if existing.exists() else Path.cwd()
    try:  # a real write (os.access says yes to root on a read-only mount)
        fd, name = tempfile.mkstemp(prefix=".opennac-probe-", dir=probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CliError(f"{target}: cannot write the {what}: {probe} is not writable "
                       f"({reason})") from None  # fmt: skip
    os.close(fd)
    os.unlink(name)
