"""The ``opennac`` command line (also ``python -m nas``).

Each subcommand lives in ``nas/commands/<name>.py`` and exposes ``register(subparsers)``, which
adds its parser and sets ``func`` (a callable taking the parsed args and returning an exit
code). Command modules import heavy libraries inside their ``func`` so that ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

# Module names under nas.commands, in the order `opennac --help` lists them.
COMMAND_MODULES = (
    "describe",
    "export",
    "import_weights",
    "data",
    "train",
    "evaluate",
    "predict",
    "latency",
    "latency_table",
    "search",
    "resume",
    "stop",
    "status",
    "variants",
    "report",
    "calibrate",
)


class CliError(Exception):
    """A user error: printed as one line (no traceback), exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opennac",
        description="Open, hardware-aware neural architecture search for YOLO-NAS models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"nas.commands.{name}")  # a missing one is a bug
        module.register(sub)
    return parser


# errno values that name a bad path (permissions, a file where a folder is expected, ...)
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EEXIST,
                errno.EROFS, errno.ENOSPC, errno.ENOENT, errno.ENAMETOOLONG}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        from nas.secrets import mask_text

        print(f"opennac {args.command}: error: {mask_text(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `opennac describe ... | head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # a path that cannot be written or read: one line, not a traceback
        if exc.filename is None or exc.errno not in _PATH_ERRNOS:
            raise
        print(f"opennac {args.command}: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"opennac {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
