"""The one Jinja2 environment every backend renders its templates with.

Role in DESIGN.md's picture: the last stage, plan → text. Templates hold layout
only; expressions arrive already printed. The environment is strict
(``StrictUndefined``), so a variable a template expects but its filler does not
give is an error, not an empty string.

Each backend keeps its templates in its own package,
``codegen/backends/<name>/templates/`` (SymForce's layout); a template is named
``<name>/<file>``, e.g. ``"numpy/kernel.py.j2"``. The folders are found, not
listed: a new backend's templates need no line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

import jinja2
import jinja2.meta

BACKENDS = Path(__file__).resolve().parent / "backends"


@cache
def environment() -> jinja2.Environment:
    folders = {backend.name: jinja2.FileSystemLoader(backend / "templates")
               for backend in sorted(BACKENDS.iterdir()) if (backend / "templates").is_dir()}
    return jinja2.Environment(
        loader=jinja2.PrefixLoader(folders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def template_variables(name: str) -> set[str]:
    """The undeclared variables a template reads (the keys its filler must give)."""
    env = environment()
    assert env.loader is not None
    source = env.loader.get_source(env, name)[0]
    return jinja2.meta.find_undeclared_variables(env.parse(source))


def render(name: str, context: Mapping[str, object]) -> str:
    """Render template ``name`` (e.g. ``"numpy/kernel.py.j2"``) with exactly ``context``."""
    expected = template_variables(name)
    given = set(context)
    if expected != given:
        raise KeyError(f"template {name}: filler gives {sorted(given - expected)} it does not "
                       f"read and lacks {sorted(expected - given)}")
    return environment().get_template(name).render(**context)
