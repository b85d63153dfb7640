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
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chainrule.symbolic import Model

__all__ = ["build_parser", "main"]

PROG = "chainrule"
DIFF_LINES_SHOWN = 40


class UsageError(Exception):
    """A command-line mistake found after parsing, such as an unknown network name."""


def _builtins() -> Mapping[str, Callable[[], Model]]:
    from chainrule.symbolic.networks import BUILTINS

    return BUILTINS


def _model_error() -> tuple[type[Exception], ...]:
    """What a model the engine or the kernels cannot take raises (reported, exit 2)."""
    from chainrule.codegen.plan.lower import LoweringError
    from chainrule.symbolic import ModelError

    return (ModelError, LoweringError)


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


def _spec(path: Path) -> tuple[Model, str]:
    """A spec file's Model (a SpecError, which is a ModelError, if it is invalid) and the
    source its generated files' header line names."""
    from chainrule.symbolic.spec import load_spec, source_of

    return load_spec(path), source_of(path)


def _model_of(args: argparse.Namespace) -> tuple[Model, str | None]:
    """The model a command names: a built-in ``NET`` or ``--model FILE``, exactly one."""
    if (args.net is None) == (args.model is None):
        raise UsageError(f"{args.command}: give NET (a built-in network) or --model FILE (a "
                         f"spec), {'not both' if args.net else 'one of them'}; known networks: "
                         f"{', '.join(_builtins())}")
    if args.model is not None:
        return _spec(args.model)
    (name,) = _select([args.net])
    return _build(name), None


def cmd_list(args: argparse.Namespace) -> int:
    builtins = _builtins()
    width = max((len(name) for name in builtins), default=0)
    for name, build in builtins.items():
        description = (build().description or "").strip().splitlines()
        print(f"{name:<{width}}  {description[0] if description else ''}".rstrip())
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    from chainrule.symbolic import derive

    model, _ = _model_of(args)
    text = derive(model).describe()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _render_all(names: Sequence[str]) -> dict[str, str]:
    from chainrule.codegen.artifacts import render

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
    from chainrule.codegen.writer import IGNORED

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
    from chainrule.codegen import writer

    if args.model is not None:  # a spec file: its folder alone
        if args.nets:
            raise UsageError("give built-in networks or --model FILE, not both")
        from chainrule.codegen.artifacts import render

        model, source = _spec(args.model)
        names = [model.name]
        files = {f"{model.name}/{rel}": text
                 for rel, text in render(model, source=source).items()}
    else:
        names = _select(args.nets)
        files = _render_all(names)
    out: Path = args.out
    folders = _folders_to_scan(out, names, everything=not args.nets and args.model is None)
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
        again = f" --model {args.model}" if args.model is not None else ""
        print(f"{shown}/ is out of date ({summary}); run `{PROG} generate{again}` to update it")
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


def cmd_check(args: argparse.Namespace) -> int:
    from chainrule.codegen.app.check import check_model

    model, source = _model_of(args)
    report = check_model(model, source=source, seed=args.seed, tolerance=args.tolerance)
    sys.stdout.write(report.table())
    return 0 if report.ok else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from chainrule.symbolic import VerifyError, derive, verify_derivation

    model, _ = _model_of(args)
    derivation = derive(model)
    try:
        report = verify_derivation(derivation, seed=args.seed, tolerance=args.tolerance)
    except VerifyError as exc:
        _error(str(exc))
        return 2
    sys.stdout.write(report.table())
    return 0 if report.ok else 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # argparse names a missing subcommand only by its metavar; name the choices too.
        if "required: COMMAND" in message:
            message = "no command given; choose from: list, derive, generate, check, verify"
        return super().error(message)


def cmd_notes(args: argparse.Namespace) -> int:
    """Write the notes' ``.tex`` into ``--out`` and build their PDFs with latexmk."""
    import time
    from collections.abc import Collection

    from chainrule.codegen.backends.latex import build as notes
    from chainrule.codegen.worked_example import run_examples
    from chainrule.symbolic import derive

    # the book holds the networks named, or with none named Graves' chapters (BOOK) only
    book: bool | Collection[str] = True
    if args.model is not None:
        if args.nets:
            raise UsageError("notes: give built-in networks or --model FILE, not both")
        models = [_spec(args.model)[0]]
    else:
        models = [_build(name) for name in _select(args.nets)]
        if not args.nets:
            from chainrule.symbolic import networks

            book = getattr(networks, "BOOK", True)
    out: Path = args.out if args.out is not None else Path("build") / "notes" / args.lang
    derivations = [derive(model) for model in models]
    # the worked example: the NumPy kernel's numbers, checked by finite differences
    examples = run_examples(derivations) if args.detail == "short" else {}
    missing = notes.missing_tex(args.lang)
    if missing:
        documents = notes.write_sources(derivations, args.lang, out, book=book,
                                        detail=args.detail, examples=examples)
        for document in documents:
            print(_display(document.tex))
        _error(f"TeX is missing, so no PDF was built (the .tex files are written); the notes in "
               f"{args.lang!r} need the Debian packages {' '.join(missing)}: "
               f"{notes.install_hint(missing)}")
        return 1
    start = time.perf_counter()
    documents = notes.build(derivations, args.lang, out, detail=args.detail, book=book,
                            examples=examples)
    seconds = time.perf_counter() - start
    status = 0
    for document in documents:
        if not document.ok:
            _error(f"{_display(document.tex)} did not compile:\n{document.error}")
            status = 1
            continue
        for warning in document.overfull:
            print(f"{PROG}: warning: {_display(document.tex)}: {warning}", file=sys.stderr)
        assert document.pdf is not None
        print(_display(document.pdf))
    built = sum(document.ok for document in documents)
    print(f"built {built} PDF{'s' if built != 1 else ''} in {seconds:.1f} s "
          f"({notes.ENGINES[args.lang]} through latexmk)", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    """The ``chainrule`` argument parser (no engine import needed to build it)."""
    parser = _Parser(
        prog=PROG,
        description="Symbolic backpropagation: derive the backward pass of a network in "
        "index notation and generate LaTeX notes and NumPy and C kernels from it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_list, _add_derive, _add_generate, _add_notes, _add_check, _add_verify):
        add(commands)
    return parser


Commands = argparse._SubParsersAction  # what add_subparsers returns


def _add_model(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--model", type=Path, metavar="FILE", help=f"a spec file (TOML){what}")


def _add_list(commands: Commands) -> None:
    listing = commands.add_parser(
        "list", help="list the built-in networks", description="List the built-in networks."
    )
    listing.set_defaults(func=cmd_list)


def _add_derive(commands: Commands) -> None:
    derive = commands.add_parser(
        "derive",
        help="print a network's derivation",
        description="Print the derivation of a built-in network's backward pass, step by step.",
    )
    derive.add_argument("net", metavar="NET", nargs="?",
                        help="a built-in network (see `chainrule list`)")
    _add_model(derive, " instead of a built-in network")
    derive.set_defaults(func=cmd_derive)


def _add_generate(commands: Commands) -> None:
    generate = commands.add_parser(
        "generate",
        help="write (or check) the generated artifacts",
        description="Render the notes and kernels of built-in networks into DIR/<net>/, "
        "all files in one atomic write.",
    )
    generate.add_argument(
        "nets", metavar="NET", nargs="*", help="built-in networks (default: all of them)"
    )
    generate.add_argument("--out", type=Path, default=Path("generated"), metavar="DIR",
                          help="output folder (default: ./generated)")
    generate.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and show what differs if DIR is not up to date",
    )
    _add_model(generate, ": render its network alone, into DIR/<name>/")
    generate.set_defaults(func=cmd_generate)


def _add_notes(commands: Commands) -> None:
    notes = commands.add_parser(
        "notes",
        help="build the notes as PDFs (needs TeX)",
        description="Write the LaTeX notes of built-in networks (or of a spec file) into DIR "
        "and build them with "
        "latexmk: one PDF per network and, for several, one combined document with a table "
        "of contents (notes.pdf). English is built with pdflatex, Chinese with xelatex. "
        "Without TeX the .tex files are still written, the missing Debian packages are named "
        "and the exit status is 1.",
    )
    notes.add_argument(
        "nets", metavar="NET", nargs="*", help="built-in networks (default: all of them)"
    )
    _add_model(notes, " instead of built-in networks")
    notes.add_argument("--lang", choices=("en", "zh"), default="en",
                       help="language of the headings and prose (default: en)")
    notes.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="output folder (default: ./build/notes/LANG)")
    notes.add_argument("--detail", choices=("short", "full"), default="short",
                       help="short: the notes a student reads (default); full: the mechanical "
                       "trace of every recorded step")
    notes.set_defaults(func=cmd_notes)


def _add_check(commands: Commands) -> None:
    check = commands.add_parser(
        "check",
        help="check a network's kernels against finite differences",
        description="Generate a network's kernels into a temporary folder and compare every "
        "gradient of every backend (NumPy, C) with central finite differences on random small "
        "sizes, in float64; print the worst relative error per parameter and backend, and "
        "exit 1 above the tolerance.",
    )
    _add_random_check(check, 1e-6, "largest relative error accepted")
    check.set_defaults(func=cmd_check)


def _add_random_check(command: argparse.ArgumentParser, tolerance: float, what: str) -> None:
    """NET or --model, --seed and --tolerance: what check and verify both take."""
    command.add_argument("net", metavar="NET", nargs="?",
                         help="a built-in network (see `chainrule list`)")
    _add_model(command, " instead of a built-in network")
    command.add_argument("--seed", type=int, default=0, help="seed of the random sizes and "
                         "values (default: 0)")
    command.add_argument("--tolerance", type=float, default=tolerance, metavar="TOL",
                         help=f"{what} (default: {tolerance:g})")


#: chainrule.symbolic.verify.TOLERANCE (tests/test_verify.py holds them equal), written
#: out so that building the parser imports no SymPy
VERIFY_TOLERANCE = 1e-9


def _add_verify(commands: Commands) -> None:
    verify = commands.add_parser(
        "verify",
        help="check every step of a network's derivation numerically",
        description="Evaluate both sides of every recorded step of every adjoint and gradient "
        "at random values on small sizes (every size 1 and T = 1; larger ones, T = 3), with "
        "the adjoints and local partials computed independently by complex-step "
        "differentiation of the forward pass; print the worst discrepancy per step, and exit "
        "1 naming each step above the tolerance.",
    )
    _add_random_check(verify, VERIFY_TOLERANCE, "largest discrepancy accepted, relative to "
                      "max(1, the largest value)")
    verify.set_defaults(func=cmd_verify)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chainrule")
    except PackageNotFoundError:
        return "(not installed)"


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    """A warning of ours (a matrix form the notes leave out) as the command line's own
    line, not Python's (source path and line)."""
    print(f"{PROG}: warning: {message}", file=sys.stderr)


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
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
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
