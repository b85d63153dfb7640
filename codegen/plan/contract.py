"""The kernel contract as data: what a caller passes and gets back, lowered from the plan.

Role in DESIGN.md's picture: the one description of the kernel API (DESIGN.md, "the
kernel contract") that every backend prints and every loader reads. The NumPy
module holds it as ``CONTRACT``, a literal; the C library returns it as JSON from
``<net>_contract()``; ``codegen.kernel_checks`` validates a call against it, for both.
Nothing here names a network: the sizes, axes and names all come from the plan.

The fields (all names are the model's, checked identifiers):

- ``sizes``: the sizes ``init_params`` takes (``SIZES``), in the model's order;
- ``time``: the name of the number of steps (``T``, ``N``, ...) or None;
- ``call_sizes``: the order of the C ``sizes`` array: ``sizes``, then ``time``, then ``B``;
- ``inputs``: each input's name → its axes (``{"x": ("T", "B", "I")}``), in the model's
  order: the kernels take them by name;
- ``labels``: each target given as class labels (integers) → the axes of its labels
  (the target's axes without the class axis), and ``classes``: that target → the size
  that counts its classes (the labels lie in ``0..classes-1``);
- ``targets``: each real-valued target (regression values, 0/1, soft labels) → its axes;
- ``outputs``: what ``predict`` returns, each quantity the loss reads → its axes;
- ``params`` and ``state``: name → axes (a state's axes without the leading ``B``);
- ``status``: the C status codes and what each means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chainrule.codegen.plan.types import Plan

__all__ = ["BAD_LABEL", "BATCH_NAME", "STATUS", "KernelContract", "contract_of", "label_ranges"]

#: the size name of the batch axis in every contract
BATCH_NAME = "B"

#: the C kernels' status codes (the NumPy kernels raise ValueError for 1 and 2), with
#: what each means; ``{classes}`` names the labels' ranges. Code 2 is a kernel's only
#: when it takes labels.
STATUS: dict[int, str] = {
    0: "success",
    1: "a size < 1, or sizes whose workspace does not fit in memory",
    2: "a label outside {classes}",
}

#: the status code of a label out of range
BAD_LABEL = 2

Axes = tuple[str, ...]


@dataclass(frozen=True)
class KernelContract:
    """One network's kernel API, in size names (see the module's docstring)."""

    name: str
    sizes: Axes
    time: str | None
    inputs: dict[str, Axes]
    labels: dict[str, Axes]
    classes: dict[str, str]
    targets: dict[str, Axes]
    outputs: dict[str, Axes]
    params: dict[str, Axes]
    state: dict[str, Axes]
    status: dict[int, str]

    @property
    def call_sizes(self) -> Axes:
        """The order of the C ``sizes`` array: SIZES, the time size (recurrent), then B."""
        return (*self.sizes, *((self.time,) if self.time else ()), BATCH_NAME)

    def as_dict(self) -> dict[str, Any]:
        """The contract as plain data (str, int, lists and dicts), in a fixed order."""
        return {
            "name": self.name,
            "sizes": list(self.sizes),
            "time": self.time,
            "call_sizes": list(self.call_sizes),
            "inputs": _lists(self.inputs),
            "labels": _lists(self.labels),
            "classes": dict(self.classes),
            "targets": _lists(self.targets),
            "outputs": _lists(self.outputs),
            "params": _lists(self.params),
            "state": _lists(self.state),
            "status": {str(code): meaning for code, meaning in self.status.items()},
        }

    def to_json(self) -> str:
        """The contract as one line of JSON (what ``<net>_contract()`` returns)."""
        return json.dumps(self.as_dict(), ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, origin: str = "a kernel contract"
                  ) -> KernelContract:
        """The contract held by ``data`` (as :meth:`as_dict` gives it); ValueError naming
        ``origin`` and the field when it is malformed."""
        def axes(value: Any, field: str) -> Axes:
            if not isinstance(value, list | tuple) or not all(isinstance(a, str) for a in value):
                raise ValueError(f"{origin}: {field} must be a list of size names, got {value!r}")
            return tuple(value)

        def table(value: Any, field: str) -> dict[str, Axes]:
            if not isinstance(value, Mapping):
                raise ValueError(f"{origin}: {field} must map names to axes, got {value!r}")
            return {str(k): axes(v, f"{field}[{k!r}]") for k, v in value.items()}

        try:
            time = data["time"]
            if time is not None and not isinstance(time, str):
                raise ValueError(f"{origin}: time must be a size name or null, got {time!r}")
            status = data["status"]
            if not isinstance(status, Mapping):
                raise ValueError(f"{origin}: status must map codes to meanings, got {status!r}")
            classes = data["classes"]
            if not isinstance(classes, Mapping) or not all(
                    isinstance(v, str) for v in classes.values()):
                raise ValueError(f"{origin}: classes must map label targets to size names, "
                                 f"got {classes!r}")
            contract = cls(
                name=str(data["name"]), sizes=axes(data["sizes"], "sizes"), time=time,
                inputs=table(data["inputs"], "inputs"), labels=table(data["labels"], "labels"),
                classes={str(k): v for k, v in classes.items()},
                targets=table(data["targets"], "targets"),
                outputs=table(data["outputs"], "outputs"),
                params=table(data["params"], "params"), state=table(data["state"], "state"),
                status={int(code): str(meaning) for code, meaning in status.items()})
        except KeyError as missing:
            raise ValueError(f"{origin} lacks the field {missing.args[0]!r}") from None
        if set(contract.classes) != set(contract.labels):
            raise ValueError(f"{origin}: classes must name the class size of every label "
                             f"target ({', '.join(contract.labels) or 'none'}), got "
                             f"{', '.join(contract.classes) or 'none'}")
        if "call_sizes" in data and axes(data["call_sizes"], "call_sizes") != contract.call_sizes:
            raise ValueError(f"{origin}: call_sizes {data['call_sizes']!r} is not sizes, time "
                             f"and B in order ({list(contract.call_sizes)!r})")
        return contract

    @classmethod
    def from_json(cls, text: str, *, origin: str = "a kernel contract") -> KernelContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{origin} is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{origin} must be a JSON object, got {type(data).__name__}")
        return cls.from_data(data, origin=origin)


def _lists(table: Mapping[str, Axes]) -> dict[str, list[str]]:
    return {name: list(axes) for name, axes in table.items()}


def label_ranges(classes: Mapping[str, str]) -> str:
    """What status 2 says of the labels' ranges: ``0..K-1``, or per target when several."""
    if len(classes) == 1:
        return f"0..{next(iter(classes.values()))}-1"
    return ", ".join(f"0..{size}-1 for {name}" for name, size in classes.items())


def contract_of(plan: Plan) -> KernelContract:
    """The kernel contract of ``plan``: its sizes, arrays and names, as size names."""
    def names(axes: tuple[Any, ...]) -> Axes:
        return tuple(str(a) for a in axes)

    def axes_of(name: str) -> Axes:
        array = plan.arrays[name]
        if array.time is not None:  # the steps 1..T, without an initial state's row
            return (str(array.time.upper), *names(array.axes[1:]))
        return names(array.axes)

    classes = {name: str(plan.arrays[name].axes[-1]) for name in plan.labels}
    status = {code: meaning.format(classes=label_ranges(classes))
              for code, meaning in STATUS.items() if code != BAD_LABEL or classes}
    return KernelContract(
        name=plan.name,
        sizes=names(plan.sizes),
        time=str(plan.time.upper) if plan.time is not None else None,
        inputs={name: axes_of(name) for name in plan.inputs},
        labels={name: axes_of(name)[:-1] for name in plan.labels},
        classes=classes,
        targets={name: axes_of(name) for name in plan.targets if name not in plan.labels},
        outputs={name: axes_of(name) for name in plan.outputs},
        params={name: names(axes) for name, axes in plan.parameters.items()},
        state={name: names(axes) for name, axes in plan.states.items()},
        status=status,
    )
