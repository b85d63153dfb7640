"""The ``chainrule`` command: list the built-in networks, show a derivation, write artifacts.

It drives the pipeline of DESIGN.md end to end for the built-in networks
(``symbolic.networks.BUILTINS``): ``derive`` shows a ``Derivation`` as text, and
``generate`` renders every artifact with ``codegen.artifacts.render`` and hands
the texts to :mod:`codegen.writer`, which writes them into ``generated/<net>/``
atomically or, with ``--check``, reports how the checked-in copies drift.

The engine is imported only inside the commands, so ``chainrule --help`` does
not pay for importing SymPy.

Exit status: 0 on success, 1 when ``generate --check`` finds drift or a file
cannot be written, 2 for a usage error or a model the engine rejects.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symbolic import Model

__all__ = ["build_parser", "main"]

PROG = "chainrule"
DIFF_LINES_SHOWN = 40


class UsageError(Exception):
    """A command-line mistake found after parsing, such as an unknown network name."""


def _builtins() -> Mapping[str, Callable[[], Model]]:
    from symbolic.networks import BUILTINS

    return BUILTINS


def _model_error() -> type[Exception]:
    from symbolic import ModelError

    return ModelError


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _select(names: Sequence[str]) -> list[str]:
    """Validate network names against the built-ins; none given means all of them."""
    builtins = _builtins()
    if not names:
        return list(builtins)
    unknown = [name for name in names if name not in builtins]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise UsageError(
            f"unknown network{plural} {', '.join(map(repr, unknown))}; "
            f"known networks: {', '.join(builtins)}"
        )
    return list(dict.fromkeys(names))


def _build(name: str) -> Model:
    return _builtins()[name]()


def cmd_list(args: argparse.Namespace) -> int:
    builtins = _builtins()
    width = max((len(name) for name in builtins), default=0)
    for name, build in builtins.items():
        description = (build().description or "").strip().splitlines()
        print(f"{name:<{width}}  {description[0] if description else ''}".rstrip())
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    from symbolic import derive

    (name,) = _select([args.net])
    text = derive(_build(name)).describe()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _render_all(names: Sequence[str]) -> dict[str, str]:
    from codegen.artifacts import render

    files: dict[str, str] = {}
    for name in names:
        for rel, text in render(_build(name)).items():
            if not isinstance(text, str):
                raise TypeError(f"render() gave {type(text).__name__} for {name}/{rel}, not str")
            files[f"{name}/{rel}"] = text
    return files


def _folders_to_scan(out: Path, names: Sequence[str], everything: bool) -> list[str]:
    """Network folders to search for stray files.

    When every built-in is generated, a folder left behind by a network that no
    longer exists is drift as well, so every folder under ``out`` is searched.
    """
    from codegen.writer import IGNORED

    folders = set(names)
    if everything and out.is_dir():
        folders.update(
            entry.name
            for entry in out.iterdir()
            if entry.is_dir() and not any(fnmatch.fnmatchcase(entry.name, p) for p in IGNORED)
        )
    return sorted(folders)


def _shorten(diff: str, limit: int = DIFF_LINES_SHOWN) -> str:
    lines = diff.splitlines()
    if len(lines) <= limit:
        return "\n".join(lines)
    return "\n".join([*lines[:limit], f"... ({len(lines) - limit} more diff lines)"])


def cmd_generate(args: argparse.Namespace) -> int:
    from codegen import writer

    names = _select(args.nets)
    out: Path = args.out
    files = _render_all(names)
    folders = _folders_to_scan(out, names, everything=not args.nets)
    shown = _display(out)

    if args.check:
        problems = writer.diff_against(out, files, nets=folders)
        if not problems:
            print(f"{shown}/ is up to date ({len(files)} files)")
            return 0
        counts: dict[str, int] = {}
        for rel, report in problems:
            path = _display(out / rel)
            if report in (writer.MISSING, writer.NOT_GENERATED, writer.NOT_A_FILE):
                kind = report
                print(f"{path}: {report}")
            else:
                kind = "changed"
                print(f"{path}: differs")
                print(_shorten(report))
            counts[kind] = counts.get(kind, 0) + 1
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        print(f"{shown}/ is out of date ({summary}); run `{PROG} generate` to update it")
        return 1

    try:
        written = writer.write_atomically(out, files)
    except OSError as exc:
        _error(f"could not write {shown}/, nothing was changed: {exc}")
        return 1
    for path in written:
        print(_display(path))
    for rel in writer.stray_files(out, files, nets=folders):
        print(
            f"{PROG}: warning: {_display(out / rel)} is not generated by any network; remove it",
            file=sys.stderr,
        )
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # argparse names a missing subcommand only by its metavar; name the choices too.
        if "required: COMMAND" in message:
            message = "no command given; choose from: list, derive, generate"
        return super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``chainrule`` argument parser (no engine import needed to build it)."""
    parser = _Parser(
        prog=PROG,
        description="Symbolic backpropagation: derive the backward pass of a network in "
        "index notation and generate LaTeX notes and NumPy and C kernels from it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list", help="list the built-in networks", description="List the built-in networks."
    )
    listing.set_defaults(func=cmd_list)

    derive = commands.add_parser(
        "derive",
        help="print a network's derivation",
        description="Print the derivation of a built-in network's backward pass, step by step.",
    )
    derive.add_argument("net", metavar="NET", help="a built-in network (see `chainrule list`)")
    derive.set_defaults(func=cmd_derive)

    generate = commands.add_parser(
        "generate",
        help="write (or check) the generated artifacts",
        description="Render the notes and kernels of built-in networks into DIR/<net>/, "
        "all files in one atomic write.",
    )
    generate.add_argument(
        "nets", metavar="NET", nargs="*", help="built-in networks (default: all of them)"
    )
    generate.add_argument(
        "--out",
        type=Path,
        default=Path("generated"),
        metavar="DIR",
        help="output folder (default: ./generated)",
    )
    generate.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and show what differs if DIR is not up to date",
    )
    generate.set_defaults(func=cmd_generate)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chainrule")
    except PackageNotFoundError:
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    """Run ``chainrule`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        model_error = _model_error()
        try:
            return args.func(args)
        except model_error as exc:
            _error(str(exc))
            return 2
    except UsageError as exc:
        _error(str(exc))
        return 2
    except BrokenPipeError:
        # `chainrule derive lstm | head`: stop quietly, as other command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
