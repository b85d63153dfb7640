"""The one Jinja2 environment every backend renders its templates with.

Role in DESIGN.md's picture: the last stage, plan → text. Templates hold layout
only; expressions arrive already printed. The environment is strict
(``StrictUndefined``), so a variable a template expects but its filler does not
give is an error, not an empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import jinja2
import jinja2.meta

TEMPLATES = "codegen"


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATES, "templates"),
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
