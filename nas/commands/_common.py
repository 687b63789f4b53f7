"""Helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
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
