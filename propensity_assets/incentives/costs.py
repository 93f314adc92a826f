"""Cost formulas of incentive treatments, parsed, never evaluated as code.

A treatment's cost is a number or a formula in a small arithmetic grammar over the
study's columns (named in backticks) and numeric literals:

    formula := term (("+" | "-") term)*
    term    := factor (("*" | "/") factor)*
    factor  := ("+" | "-") factor | atom
    atom    := number | `column` | ("min" | "max") "(" formula ("," formula)* ")" | "(" formula ")"

(`×`, `÷` and `−` are accepted for `*`, `/` and `-`.) Anything else — a method call, an
attribute, a name that is not min or max, a string — is refused with the offending token.
The catalogue parses every formula when it loads, and the registered recommender carries
the formula text and parses it again, so a formula can never run code.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

FUNCTIONS = {"min": np.minimum, "max": np.maximum}
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_SYNONYMS = {"×": "*", "÷": "/", "−": "-"}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|`(?P<column>[^`]+)`"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>[-+*/(),×÷−]))"
)


class CostFormulaError(ValueError):
    """A cost formula outside the grammar; the message names the offending token."""


@dataclass(frozen=True)
class _Token:
    kind: str  # number, column, name, op, end
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if not match:
            bad = text[at:].strip()
            token = bad if bad.startswith("`") else re.match(r"\S+?(?=[\s()`,]|$)|\S", bad).group(0)
            raise CostFormulaError(f"unexpected {token!r} at character {at + len(text[at:]) - len(bad) + 1}")
        kind = match.lastgroup
        value = match.group(kind)
        out.append(_Token(kind, _SYNONYMS.get(value, value), match.start(kind)))
        at = match.end()
    out.append(_Token("end", "", len(text)))
    return out


# The parsed formula: ("num", value) | ("col", name) | ("neg", node) | (op, left, right) | ("call", fn, [args])
Node = tuple


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.i = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text or token.kind != "op":
            raise CostFormulaError(f"expected {text!r} at character {token.at + 1}, found {_shown(token)}")

    def formula(self) -> Node:
        node = self.term()
        while self.token.kind == "op" and self.token.text in "+-":
            node = (self.take().text, node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.token.kind == "op" and self.token.text in "*/":
            node = (self.take().text, node, self.factor())
        return node

    def factor(self) -> Node:
        if self.token.kind == "op" and self.token.text in "+-":
            sign = self.take().text
            inner = self.factor()
            return ("neg", inner) if sign == "-" else inner
        return self.atom()

    def atom(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return ("num", float(token.text))
        if token.kind == "column":
            return ("col", token.text)
        if token.kind == "name":
            if token.text not in FUNCTIONS:
                raise CostFormulaError(
                    f"unexpected {token.text!r} at character {token.at + 1}: only min(...) and max(...) may be "
                    "called, and columns are named in backticks"
                )
            self.expect("(")
            args = [self.formula()]
            while self.token.kind == "op" and self.token.text == ",":
                self.take()
                args.append(self.formula())
            self.expect(")")
            return ("call", token.text, args)
        if token.kind == "op" and token.text == "(":
            node = self.formula()
            self.expect(")")
            return node
        raise CostFormulaError(f"unexpected {_shown(token)} at character {token.at + 1}")


def _shown(token: _Token) -> str:
    return "the end of the formula" if token.kind == "end" else repr(token.text)


def _columns(node: Node) -> list[str]:
    kind = node[0]
    if kind == "col":
        return [node[1]]
    if kind == "num":
        return []
    if kind == "neg":
        return _columns(node[1])
    if kind == "call":
        return [c for arg in node[2] for c in _columns(arg)]
    return _columns(node[1]) + _columns(node[2])


def _evaluate(node: Node, values: Mapping[str, np.ndarray]):
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "col":
        return values[node[1]]
    if kind == "neg":
        return -_evaluate(node[1], values)
    if kind == "call":
        args = [_evaluate(arg, values) for arg in node[2]]
        result = args[0]
        for arg in args[1:]:
            result = FUNCTIONS[node[1]](result, arg)
        return result
    return _BINARY[kind](_evaluate(node[1], values), _evaluate(node[2], values))


@dataclass(frozen=True)
class CostFormula:
    """A parsed cost: `columns` it reads, in order of first use; `evaluate` on a table."""

    text: str
    tree: Node
    columns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str | int | float) -> CostFormula:
        """The formula of `text` (a number or a formula of the grammar above); a
        CostFormulaError naming the offending token otherwise, or a literal that is not finite."""
        text = str(text).strip()
        if not text:
            raise CostFormulaError("empty: expected a number or a formula such as \"100 * `PC Count`\"")
        parser = _Parser(text)
        for token in parser.tokens:
            if token.kind == "number" and not math.isfinite(float(token.text)):
                raise CostFormulaError(f"the number {token.text} is not finite (costs must be finite)")
        tree = parser.formula()
        if parser.token.kind != "end":
            raise CostFormulaError(f"unexpected {_shown(parser.token)} at character {parser.token.at + 1}")
        return cls(text, tree, tuple(dict.fromkeys(_columns(tree))))

    @property
    def constant(self) -> float | None:
        """The formula's value when it reads no column, else None."""
        if self.columns:
            return None
        with np.errstate(all="ignore"):
            return float(_evaluate(self.tree, {}))

    def evaluate(self, data, rows: int | None = None) -> np.ndarray:
        """The cost per row of `data` (a DataFrame or a mapping of columns), as floats."""
        n = len(data) if rows is None else rows
        values = {c: np.asarray(data[c], dtype=float) for c in self.columns}
        with np.errstate(all="ignore"):
            result = _evaluate(self.tree, values)
        return np.asarray(result, dtype=float) * np.ones(n)

