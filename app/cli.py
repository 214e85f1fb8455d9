"""The `gmvit` command line: one program, one subcommand per job.

Each command lives in its own module under `app/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `func` (called with the parsed
namespace, returning an exit code or None). Errors a user can fix are printed as one line
on stderr with exit code 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

COMMAND_MODULES: tuple[str, ...] = (
    "app.commands.convert",
    "app.commands.export",
    "app.commands.render",
    "app.commands.serve",
    "app.commands.worker",
    "app.commands.classify",
    "app.commands.search",
    "app.commands.index",
    "app.commands.reindex",
    "app.commands.dataset",
    "app.commands.train",
)


class CLIError(Exception):
    """A problem the user can fix (bad argument, missing file): one line, exit 2."""


def existing_file(path: str | os.PathLike) -> Path:
    """`path` if it is a file to read, else a CLIError that says what it is instead."""
    file = Path(path)
    if file.is_file():
        return file
    if file.is_dir():
        raise CLIError(f"{file}: a folder, not a file")
    if file.exists():
        raise CLIError(f"{file}: not a regular file")
    raise CLIError(f"{file}: no such file")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for a person, not a traceback."""
    errors: list[type[BaseException]] = [CLIError, FileNotFoundError, IsADirectoryError]
    for module_name, attr in (
        ("renderer", "MeshError"),
        ("gmvit", "GMViTError"),
        ("index", "ShapeIndexError"),
        ("app.settings", "InvalidSettings"),
    ):
        try:
            errors.append(getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gmvit", description="3D shape recognition and retrieval with GMViT."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Rendering without a display: OSMesa on the CPU, EGL where the model runs on a GPU.
    gpu = os.environ.get("GMVIT_DEVICE") == "cuda"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl" if gpu else "osmesa")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:  # library warnings are not for users: errors are one line
        warnings.simplefilter("ignore")
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("gmvit: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if args.debug:
            raise
        print(f"gmvit: error: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)
