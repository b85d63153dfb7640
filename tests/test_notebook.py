"""examples/derivation.ipynb runs, and a Derivation, an adjoint and a step display as LaTeX in
the notes' letters (symbolic/notebook.py, through their ``_repr_latex_``).

The notebook runs in a Jupyter kernel through nbclient where nbclient, nbformat and
ipykernel are installed (``pip install -e '.[examples]'``); without them its code cells
run in one namespace by the small runner below, which shows no output but fails as the
notebook would.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

from chainrule.symbolic import derive
from chainrule.symbolic.networks import lstm, rnn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOK = EXAMPLES / "derivation.ipynb"
HAS_JUPYTER = all(importlib.util.find_spec(m) is not None
                  for m in ("nbclient", "nbformat", "ipykernel"))


def latex_outputs(notebook: dict) -> list[str]:
    return ["".join(output["data"]["text/latex"]) for cell in notebook["cells"]
            for output in cell.get("outputs", ()) if "text/latex" in output.get("data", {})]


@pytest.mark.skipif(not HAS_JUPYTER, reason="nbclient, nbformat or ipykernel is not "
                    "installed (pip install -e '.[examples]'); the runner test covers the code")
def test_the_notebook_runs_in_jupyter() -> None:
    import nbclient
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    shown = latex_outputs(notebook)
    assert len(shown) == 3  # the derivation, the adjoint, the step
    assert r"\delta_{h}^{t} &=" in shown[0] and r"\text{(chain rule)}" in shown[1]


@pytest.mark.skipif(HAS_JUPYTER, reason="Jupyter is installed: the notebook runs in a kernel")
def test_the_notebook_code_runs_alone() -> None:
    """Every code cell, in order, in one namespace (the runner without Jupyter)."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    namespace: dict = {"__name__": "__notebook__"}
    with contextlib.chdir(EXAMPLES), open(os.devnull, "w") as quiet, \
            contextlib.redirect_stdout(quiet):
        for cell in cells:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    assert namespace["delta"].name == "d_a_h"


def test_reprs_in_the_notes_letters() -> None:
    derivation = derive(rnn.build())
    text = derivation._repr_latex_()
    assert text.startswith("$$\\begin{aligned}") and text.endswith("\\end{aligned}$$")
    assert r"\delta_{k}^{(y)\,t} &= y_{k}^{t} - z_{k}^{t}" in text  # δ_k = y_k - z_k
    assert r"\left(b_{h}^{t}\right)^{2}" in text  # no double superscript
    assert r"\frac{\partial L}{\partial w_{ih}^{(xh)}} &= \sum_{t} \delta_{h}^{t} x_{i}^{t}" in text
    adjoint = derivation.adjoint("a_h")._repr_latex_()
    assert adjoint.count(r"\text{(") == len(derivation.adjoint("a_h").steps)
    assert r"\delta_{jj'}" in adjoint  # a Kronecker delta of the local partials
    step = derivation.adjoint("a_h").steps[0]._repr_latex_()
    assert r"\frac{\partial L}" in step and r"\text{(chain rule)}" in step
    gates = derive(lstm.build())._repr_latex_()
    assert r"\delta_{\omega,c}^{t}" in gates  # a gate's label stays beside the cell index
