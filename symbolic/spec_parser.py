"""The equation parser of spec files: text in index notation → SymPy objects, safely.

Role in DESIGN.md's picture: the part of "a TOML spec (spec.py)" that reads
equations. The text is parsed by Python's :mod:`ast` (which only builds a syntax
tree; it runs nothing) and the tree is walked against a whitelist. Every node
outside it is a :class:`SpecError` naming what was found and what is allowed:

- numbers (``1``, ``0.5``); the names of the model's quantities, sizes and indices;
- subscripts ``x[i, t]``, whose indices are index names or ``index ± integer``
  (``t - 1``); the model decides which of those it accepts;
- ``+ - * / **`` and unary ``-`` / ``+``;
- ``sum(expr, i, ...)``, the sum over the whole range of each index;
- calls of the functions that have derivative rules (``symbolic.functions``:
  exp, log, tanh, logistic, relu — whatever is registered).

Nothing here calls ``eval``, ``exec``, ``compile`` on a string, ``sympify`` or
``parse_expr``: SymPy objects are built from the tree by constructors only.
Names resolve against a :class:`~symbolic.model.Model` under construction, so a
name that is not declared is an error here, not a fresh symbol.

Every number the parser builds, literal or folded by SymPy (``1e300 * 1e300``,
``2 ** 2000``, ``exp(1000)``), must be a finite double: SymPy folds in
arbitrary precision, the kernels compute in float64, and a constant that
overflows there would make every loss and gradient NaN or infinite.

Limits. SymPy evaluates while it builds: each function call, power and
division asks SymPy's assumption system about its argument (is it real? zero?),
which for an argument that itself holds such operations costs time exponential
in how deeply they nest (``tanh`` nested 8 deep took seconds, 12 deep minutes),
and derivation, lowering and printing ask again. Before any SymPy object is
built, one linear pass over the syntax tree checks:

- :data:`MAX_LENGTH` characters of text per equation;
- :data:`MAX_NODES` expression nodes (numbers, names, operators, calls,
  subscripts) per equation, both sides together;
- :data:`MAX_NESTING` levels of syntactic nesting (a chain ``a + b - c + ...`` or
  ``a * b / c * ...`` is one level);
- :data:`MAX_NONLINEAR_DEPTH` functions, powers and divisions nested inside one
  another: ``log(exp(a[k]) / sum(exp(a[k_]), k_))`` has three (log, the
  division, exp). Deeper expressions are written as several equations, with
  named intermediates, as the notes would name them anyway.

Within these limits an equation parses in well under a second. A
:class:`NodeBudget` lets a whole spec (``symbolic.spec``) bound the nodes of all
its equations together.
"""

from __future__ import annotations

import ast
import math
import sys
import warnings
from collections.abc import Callable

import sympy
from sympy import Expr, Idx, Indexed

from .functions import function_names
from .model import Model, ModelError, Role

__all__ = ["MAX_LENGTH", "MAX_NESTING", "MAX_NODES", "MAX_NONLINEAR_DEPTH", "SUM", "NodeBudget",
           "SpecError", "functions", "parse_equation", "parse_expression"]

#: The name of the summation call: ``sum(W[i, h] * x[i], i)``.
SUM = "sum"
#: Longer equation texts are refused before parsing.
MAX_LENGTH = 20_000
#: A power of two numbers is evaluated only when its result has at most this many bits.
MAX_POWER_BITS = 4096
#: Expression nodes (numbers, names, operators, calls, subscripts) in one equation.
MAX_NODES = 500
#: Levels of syntactic nesting in one equation (parentheses, operators, calls).
MAX_NESTING = 32
#: Functions, powers and divisions nested inside one another in one equation.
MAX_NONLINEAR_DEPTH = 6
#: The largest finite double.
FLOAT64_MAX = sys.float_info.max

EXAMPLE = "a[h, t] = sum(W[i, h] * x[i, t], i) + b[h]"


class SpecError(ModelError):
    """A spec file (or one equation in it) is malformed; the message says where and why."""


class NodeBudget:
    """The expression nodes a whole spec may still spend on its equations (see the module)."""

    def __init__(self, nodes: int, what: str) -> None:
        self.limit = nodes
        self.left = nodes
        self.what = what  # how the message names the limit, e.g. "the spec's equations"

    def spend(self, nodes: int) -> None:
        self.left -= nodes
        if self.left < 0:
            raise SpecError(f"{self.what} have more than {self.limit} expression nodes in all "
                            f"(numbers, names, operators, calls and subscripts); at most "
                            f"{self.limit} are accepted")


def functions() -> dict[str, Callable[[Expr], Expr]]:
    """The callable functions by name: every function with a registered derivative rule
    (``abs``), and ``sqrt`` (``symbolic.functions.function_names``)."""
    return function_names()


def parse_equation(text: str, model: Model, *,
                   budget: NodeBudget | None = None) -> tuple[Indexed, Expr]:
    """``"a[h, t] = ..."`` → ``(a[h, t], rhs)`` with names resolved in ``model``.

    The equation's nodes are spent from ``budget`` when one is given.
    """
    tree = _parse(text, "exec")
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign):
        raise SpecError(f"expected one equation `quantity[indices] = expression`, e.g. "
                        f"`{EXAMPLE}`")
    statement = tree.body[0]
    if len(statement.targets) != 1:
        raise SpecError("expected one `=`: an equation defines one quantity")
    _check_limits(statement, budget)
    return _Builder(model).lhs(statement.targets[0]), _Builder(model).build(statement.value)


def parse_expression(text: str, model: Model, *, budget: NodeBudget | None = None) -> Expr:
    """An expression such as a loss, ``"-sum(z[k, t] * log(y[k, t]), k, t)"``."""
    tree = _parse(text, "eval")
    _check_limits(tree.body, budget)
    return _Builder(model).build(tree.body)


def _check_limits(root: ast.AST, budget: NodeBudget | None) -> None:
    """The limits of the module's docstring, in one pass over the tree (no recursion)."""
    nodes = 0
    # (node, syntactic nesting, functions/powers/divisions it lies inside)
    stack: list[tuple[ast.AST, int, int]] = [(root, 1, 0)]
    while stack:
        node, nesting, inside = stack.pop()
        if not isinstance(node, ast.expr):
            stack.extend((child, nesting, inside) for child in ast.iter_child_nodes(node))
            continue
        nodes += 1
        if nodes > MAX_NODES:
            raise SpecError(f"the equation has more than {MAX_NODES} expression nodes "
                            f"(numbers, names, operators, calls and subscripts); at most "
                            f"{MAX_NODES} are accepted: split it into several equations")
        if nesting > MAX_NESTING:
            raise SpecError(f"the equation nests more than {MAX_NESTING} levels deep; at most "
                            f"{MAX_NESTING} are accepted: split it into several equations")
        deeper = _nonlinear_children(node)
        level = inside + (1 if deeper else 0)
        if level > MAX_NONLINEAR_DEPTH:
            raise SpecError(
                f"`{_short(node)}` lies inside {inside} functions, powers or divisions; at most "
                f"{MAX_NONLINEAR_DEPTH} may nest inside one another (SymPy's cost grows "
                f"exponentially with the depth): define the inner part as an intermediate "
                f"quantity of its own equation")
        for child in ast.iter_child_nodes(node):
            continues = (isinstance(node, ast.BinOp) and child is node.left
                         and isinstance(child, ast.BinOp) and _same_family(child.op, node.op))
            stack.append((child, nesting + (0 if continues else 1),
                          inside + (1 if child in deeper else 0)))
    if budget is not None:
        budget.spend(nodes)


def _nonlinear_children(node: ast.expr) -> list[ast.AST]:
    """The operands that ``node`` puts inside a function, a power or a division, if any.

    A function's argument, a power's base and exponent, a division's denominator;
    none when they are plain numbers or size names (``x / 2``, ``H ** 2``), which
    cost SymPy nothing to ask about. ``sum`` is not a function here.
    """
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == SUM:
            return []
        return list(node.args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        operands = [node.left, node.right]
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        operands = [node.right]
    else:
        return []
    return [] if all(map(_plain_constant, operands)) else operands


def _same_family(inner: ast.operator, outer: ast.operator) -> bool:
    """Whether ``(a inner b) outer c`` continues one chain: + and -, or * and /."""
    sums, products = (ast.Add, ast.Sub), (ast.Mult, ast.Div)
    return ((isinstance(inner, sums) and isinstance(outer, sums))
            or (isinstance(inner, products) and isinstance(outer, products)))


def _plain_constant(node: ast.AST) -> bool:
    while isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant | ast.Name)


def _parse(text: object, mode: str) -> ast.AST:
    if not isinstance(text, str):
        raise SpecError(f"an equation must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise SpecError(f"the text is {len(text)} characters long; at most {MAX_LENGTH} "
                        f"are accepted")
    # A TOML multi-line string may spread an equation over lines; it is one equation.
    flat = " ".join(text.split("\n")).strip()
    if not flat:
        raise SpecError(f"the text is empty; expected e.g. `{EXAMPLE}`")
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal": an error follows
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.parse(flat, mode=mode)
    except SyntaxError as error:
        column = f" at column {error.offset}" if error.offset else ""
        raise SpecError(f"syntax error{column}: {error.msg}; expected index notation such "
                        f"as `{EXAMPLE}`") from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise SpecError(f"cannot parse the text: {type(error).__name__}: {error}") from None


class _Builder:
    """Walks one syntax tree against the whitelist and builds the SymPy expression."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.functions = functions()
        self.constant: set[int] = set()  # ids of the nodes made of numbers only

    # --- the left side ----------------------------------------------------------------------

    def lhs(self, node: ast.AST) -> Indexed:
        if not isinstance(node, ast.Subscript) or not isinstance(node.value, ast.Name):
            raise SpecError(f"the left side must be a quantity with its indices, such as "
                            f"`a[h, t]`, got `{_text(node)}`")
        base = self.quantity(node.value)
        indices = [self.index(item, plain=True) for item in _items(node.slice)]
        return base[tuple(indices)]

    # --- the right side ---------------------------------------------------------------------

    def build(self, node: ast.AST) -> Expr:
        self.constant = _constant_nodes(node)
        try:
            expr = self.expr(node)
        except RecursionError:
            raise SpecError("the expression is nested too deeply") from None
        if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise SpecError(f"`{_short(node)}` is not finite (a division by zero?)")
        # the numbers SymPy folded into coefficients deep inside (b * 1e300 * 1e300)
        for number in sorted(expr.atoms(sympy.Number), key=abs, reverse=True):
            _check_double(number, node)
        return expr

    def expr(self, node: ast.AST) -> Expr:
        result = self.node(node)
        self.check_numbers(result, node)
        return result

    def check_numbers(self, result: Expr, node: ast.AST) -> None:
        """The numbers SymPy has just folded into ``result`` (``node``'s) must be doubles."""
        if result.is_Number or id(node) in self.constant:
            # a number or a constant (exp(1000)) SymPy folded here: a double must hold it
            _check_double(result, node)
        elif isinstance(result, sympy.Mul | sympy.Add):
            for arg in result.args:
                coefficient = arg if arg.is_Number else arg.as_coeff_Mul()[0]
                if coefficient is not sympy.S.One:
                    _check_double(coefficient, node)

    def node(self, node: ast.AST) -> Expr:
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Subscript):
            return self.reference(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.expr(node.operand)
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand)
            raise SpecError(f"the operator `{_op(node.op)}` is not allowed; expected "
                            f"+ - * / ** and unary -")
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise SpecError(f"{_describe(node)} `{_text(node)}` is not allowed in an equation; "
                        f"expected numbers, quantities with indices (x[i, t]), + - * / **, "
                        f"sum(expr, index) and the functions {', '.join(self.functions)}")

    def number(self, node: ast.Constant) -> Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"the constant `{_text(node)}` is not allowed; expected a real "
                            f"number such as 1 or 0.5")
        if isinstance(value, int):
            return sympy.Integer(value)
        if not math.isfinite(value):
            raise SpecError(f"the number `{_text(node)}` is not finite")
        return sympy.Float(value)

    def name(self, node: ast.Name) -> Expr:
        name = node.id
        model = self.model
        if name in model.sizes:
            return model.sizes[name]
        if name in model.indices:
            raise SpecError(f"the index `{name}` is used as a value; indices only subscript "
                            f"quantities, as in x[{name}]")
        if name in model.quantities:
            raise SpecError(f"the quantity `{name}` needs its indices: "
                            f"{self.example_reference(name)}")
        if name in self.functions or name == SUM:
            raise SpecError(f"`{name}` is a function; call it, as in {name}(...)")
        raise SpecError(self.unknown(name))

    def quantity(self, node: ast.Name) -> sympy.IndexedBase:
        quantity = self.model.quantities.get(node.id)
        if quantity is None or quantity.role is Role.LOSS:
            if node.id in self.model.sizes or node.id in self.model.indices:
                kind = "size" if node.id in self.model.sizes else "index"
                raise SpecError(f"`{node.id}` is a {kind}, not a quantity; it cannot be "
                                f"subscripted")
            raise SpecError(self.unknown(node.id))
        return quantity.base

    def reference(self, node: ast.Subscript) -> Expr:
        if not isinstance(node.value, ast.Name):
            raise SpecError(f"`{_text(node)}`: only a quantity's name can be subscripted, "
                            f"as in x[i, t]")
        base = self.quantity(node.value)
        return base[tuple(self.index(item) for item in _items(node.slice))]

    def index(self, node: ast.AST, *, plain: bool = False) -> Expr:
        """An index name, or ``index ± integer`` (``t - 1``) or the last step ``T`` unless
        ``plain``."""
        time = self.model.time_index
        if (not plain and isinstance(node, ast.Name) and time is not None
                and node.id == str(time.upper)):
            return time.upper  # the last step, as in y[k, T]
        if isinstance(node, ast.Name):
            return self.index_name(node)
        if (not plain and isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub)
                and isinstance(node.left, ast.Name) and isinstance(node.right, ast.Constant)
                and type(node.right.value) is int and abs(node.right.value) < 1_000_000):
            index = self.index_name(node.left)
            shift = node.right.value
            return index + shift if isinstance(node.op, ast.Add) else index - shift
        expected = ("an index name" if plain
                    else "an index name, an index minus a whole number, such as t - 1, or the "
                         "last step T")
        raise SpecError(f"the index `{_text(node)}` is not allowed here; expected {expected}")

    def index_name(self, node: ast.Name) -> Idx:
        index = self.model.indices.get(node.id)
        if index is None:
            known = ", ".join(self.model.indices) or "none"
            raise SpecError(f"`{node.id}` is not an index of this spec (indices: {known})")
        return index

    def binary(self, node: ast.BinOp) -> Expr:
        if not isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Pow):
            raise SpecError(f"the operator `{_op(node.op)}` in `{_short(node)}` is not allowed; "
                            f"expected + - * / **")
        # a + b - c + ... is a chain down the left operands: built in a loop, not by recursion
        chain = [node]
        while (isinstance(chain[-1].left, ast.BinOp)
               and _same_family(chain[-1].left.op, chain[-1].op)):
            chain.append(chain[-1].left)
        result = self.expr(chain[-1].left)
        for link in reversed(chain):
            result = self.combine(link, result, self.expr(link.right))
            if link is not node:
                self.check_numbers(result, link)
        return result

    def combine(self, node: ast.BinOp, left: Expr, right: Expr) -> Expr:
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            if right.is_Number and right.is_zero:
                raise SpecError(f"`{_short(node)}` divides by zero")
            return left / right
        if left.is_Number and right.is_Number:
            self.check_power(node, left, right)
        return left**right

    @staticmethod
    def check_power(node: ast.BinOp, base: Expr, exponent: Expr) -> None:
        """Refuse a power of numbers whose value SymPy would compute with too many digits."""
        if base.is_zero and exponent.is_negative:
            raise SpecError(f"`{_text(node)}` divides by zero")
        if not (base.is_Rational and exponent.is_Integer):
            return  # a float power has fixed precision; a fractional one stays symbolic
        bits = max(abs(base.p).bit_length(), abs(base.q).bit_length(), 1) * abs(exponent.p)
        if bits > MAX_POWER_BITS:
            raise SpecError(f"`{_text(node)}` is too large a number; a power of numbers may "
                            f"have at most {MAX_POWER_BITS} bits")

    def call(self, node: ast.Call) -> Expr:
        if not isinstance(node.func, ast.Name):
            raise SpecError(f"`{_text(node.func)}` cannot be called; expected sum(expr, "
                            f"index) or one of the functions {', '.join(self.functions)}")
        name = node.func.id
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise SpecError(f"`{_text(node)}`: {name}() takes plain arguments, no keywords "
                            f"and no *")
        if name == SUM:
            return self.sum(node)
        function = self.functions.get(name)
        if function is None:
            raise SpecError(f"unknown function `{name}`; expected sum(expr, index) or a "
                            f"function with a derivative rule: {', '.join(self.functions)}")
        if len(node.args) != 1:
            raise SpecError(f"`{_text(node)}`: {name} takes one argument, got {len(node.args)}")
        return function(self.expr(node.args[0]))

    def sum(self, node: ast.Call) -> Expr:
        if len(node.args) < 2:
            raise SpecError(f"`{_text(node)}`: expected sum(expr, index, ...), the sum of expr "
                            f"over one or more indices")
        indices = []
        for arg in node.args[1:]:
            if not isinstance(arg, ast.Name):
                raise SpecError(f"`{_text(node)}`: sum runs over index names (the whole range "
                                f"of each), got `{_text(arg)}`")
            indices.append(self.index_name(arg))
        if len(set(indices)) != len(indices):
            raise SpecError(f"`{_text(node)}`: an index appears twice in the sum")
        return sympy.Sum(self.expr(node.args[0]), *indices)

    # --- messages ----------------------------------------------------------------------------

    def unknown(self, name: str) -> str:
        model = self.model
        quantities = [q for q, v in model.quantities.items() if v.role is not Role.LOSS]
        return (f"`{name}` is never defined: it is not a quantity, size or index of this spec "
                f"(quantities: {', '.join(quantities) or 'none'}; sizes: "
                f"{', '.join(model.sizes) or 'none'}; indices: "
                f"{', '.join(model.indices) or 'none'})")

    def example_reference(self, name: str) -> str:
        quantity = self.model.quantities[name]
        try:
            indices = [i.name for i in self.model.canonical_indices(quantity)]
        except ModelError:
            indices = [s.name for s in quantity.sizes] + (["t"] if quantity.time else [])
        return f"{name}[{', '.join(indices)}]"


def _constant_nodes(root: ast.AST) -> set[int]:
    """The ids of the nodes under ``root`` without names or subscripts: numbers only."""
    order: list[ast.AST] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(ast.iter_child_nodes(node))
    variable: set[int] = set()
    for node in reversed(order):  # children before their parents
        operands = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
        if isinstance(node, ast.Name | ast.Subscript) or any(
                id(child) in variable for child in operands):
            variable.add(id(node))
    return {id(node) for node in order if id(node) not in variable}


def _check_double(value: Expr, node: ast.AST) -> None:
    """A constant of the equation (``node``'s part) must be a finite float64."""
    try:
        double = _double(value)
    except (OverflowError, ZeroDivisionError, ValueError):
        double = math.nan
    if double is None or math.isfinite(double):
        return
    shown = sympy.Float(value, 5) if value.is_Number else sympy.sstr(value)
    raise SpecError(f"`{_short(node)}` makes the number {shown}, which is not a finite double "
                    f"(float64 holds at most ±{FLOAT64_MAX:.4g}); the kernels would compute "
                    f"NaN or infinity")


def _double(value: Expr) -> float | None:
    """``value`` computed in float64 (inf when it overflows), or None when it is not a constant
    made of numbers, + * ** and the functions; never SymPy's evalf, whose cost is unbounded
    (``exp(exp(exp(10)))``)."""
    if value.is_Integer:
        return float(int(value))  # OverflowError beyond the double range
    if value.is_Rational:
        return int(value.p) / int(value.q)
    if value.is_Float:
        return float(value)
    if value is sympy.E:
        return math.e
    args = [_double(arg) for arg in value.args]
    if any(arg is None for arg in args):
        return None
    if isinstance(value, sympy.Add):
        return math.fsum(args)
    if isinstance(value, sympy.Mul):
        return math.prod(args)
    if isinstance(value, sympy.Pow):
        return math.pow(args[0], args[1])
    one = {"exp": math.exp, "log": math.log, "tanh": math.tanh,
           "logistic": lambda v: 0.5 * (1.0 + math.tanh(0.5 * v)),
           "relu": lambda v: max(v, 0.0), "step": lambda v: float(v > 0),
           "sin": math.sin, "cos": math.cos, "erf": math.erf, "Abs": abs,
           "sign": lambda v: float((v > 0) - (v < 0)),
           "softplus": lambda v: max(v, 0.0) + math.log1p(math.exp(-abs(v)))}
    function = one.get(type(value).__name__)
    if function is None or len(args) != 1:
        return None
    return function(args[0])


def _short(node: ast.AST, width: int = 80) -> str:
    text = _text(node)
    return text if len(text) <= width else text[:width - 3] + "..."


def _items(node: ast.AST) -> list[ast.AST]:
    return list(node.elts) if isinstance(node, ast.Tuple) else [node]


def _text(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # unparse of a strange tree: name the node instead
        return type(node).__name__


def _op(op: ast.AST) -> str:
    symbols = {ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.BitAnd: "&",
               ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
               ast.Not: "not", ast.Invert: "~"}
    return symbols.get(type(op), type(op).__name__)


def _describe(node: ast.AST) -> str:
    kinds = {ast.Attribute: "attribute access", ast.Lambda: "a lambda",
             ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
             ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
             ast.Compare: "a comparison", ast.BoolOp: "a boolean operator",
             ast.IfExp: "a conditional expression", ast.NamedExpr: "an assignment expression",
             ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
             ast.Starred: "unpacking", ast.JoinedStr: "an f-string", ast.List: "a list",
             ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set", ast.Slice: "a slice"}
    return kinds.get(type(node), type(node).__name__)
