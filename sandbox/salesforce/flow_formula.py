"""The subset of Salesforce formula syntax the sandbox reads in a record-triggered flow's entry condition
(`<filterFormula>` of the flow's start): a small, explicit parser and evaluator.

Read:

- merge fields `{!$Record.Field}` (the triggering record) and `{!$Permission.Name}` (whether the
  running user holds the custom permission);
- the boolean literals `TRUE` and `FALSE`;
- the functions `AND(a, b, ...)`, `OR(a, b, ...)`, `NOT(a)`, `ISNEW()`, `ISCHANGED({!$Record.Field})`,
  `PRIORVALUE({!$Record.Field})` and `ISBLANK(value)`, names in any case;
- the operators `&&` and `||` (one kind per parenthesised group: a mix needs parentheses here);
- parentheses, spaces and line breaks.

Anything else (other functions, comparisons, text or number literals, `$Record__Prior`, other global
variables) raises `FormulaError` naming the construct, rather than being read wrongly.

Evaluation follows Salesforce's descriptions of the functions: ISNEW() is true while a record is
created; ISCHANGED() is false on a new record and otherwise true when the value differs from the prior
one; PRIORVALUE() on a new record is the value being saved; ISBLANK() is true for no value or empty text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Record = Mapping[str, Any]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<merge>\{!\$(?P<scope>[A-Za-z_][A-Za-z0-9_]*)\.(?P<name>[A-Za-z][A-Za-z0-9_]*)\})
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<text>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<and>&&)
  | (?P<or>\|\|)
  | (?P<punctuation>[(),])
    """,
    re.VERBOSE,
)
BOOLEAN_FUNCTIONS = frozenset({"AND", "OR", "NOT", "ISNEW", "ISCHANGED", "ISBLANK"})
FUNCTIONS = BOOLEAN_FUNCTIONS | {"PRIORVALUE"}


class FormulaError(ValueError):
    """A formula outside the subset read here; the message names the construct."""


# --- syntax tree ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: bool


@dataclass(frozen=True)
class RecordField:
    """`{!$Record.Field}`."""

    name: str


@dataclass(frozen=True)
class Permission:
    """`{!$Permission.Name}`."""

    name: str


@dataclass(frozen=True)
class Call:
    """A function call; `&&` and `||` are read as AND and OR."""

    function: str
    args: tuple[Node, ...]


Node = Literal | RecordField | Permission | Call


@dataclass(frozen=True)
class Formula:
    text: str
    root: Node

    @property
    def fields(self) -> frozenset[str]:
        """Every `$Record` field the formula names."""
        return frozenset(node.name for node in _walk(self.root) if isinstance(node, RecordField))

    @property
    def changed_fields(self) -> frozenset[str]:
        """The fields given to ISCHANGED()."""
        return frozenset(
            arg.name
            for node in _walk(self.root)
            if isinstance(node, Call) and node.function == "ISCHANGED"
            for arg in node.args
            if isinstance(arg, RecordField)
        )

    @property
    def permissions(self) -> frozenset[str]:
        """Every custom permission the formula names."""
        return frozenset(node.name for node in _walk(self.root) if isinstance(node, Permission))

    def check_fields(self, field_type: Callable[[str], str | None]) -> None:
        """Check the fields against the object: `field_type(name)` is the field's type ("boolean", ...)
        or None when the object has no such field. A field used as a condition must be a boolean."""
        for name in sorted(self.fields):
            if field_type(name) is None:
                raise FormulaError(f"the formula names {{!$Record.{name}}}, a field the object does not have")
        for node in _conditions(self.root):
            used = _value_field(node)
            if used is not None and field_type(used) != "boolean":
                raise FormulaError(
                    f"{{!$Record.{used}}} is used as a condition but is not a checkbox (boolean) field"
                )

    def evaluate(
        self, after: Record, before: Record | None, *, is_new: bool, permissions: frozenset[str]
    ) -> bool:
        """Whether the formula holds for a save: `after` the record as saved, `before` as it was (None on
        create), `permissions` the custom permissions the running user holds."""
        context = _Context(after, before, is_new, permissions)
        return bool(context.value(self.root))


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Call):
        for arg in node.args:
            yield from _walk(arg)


def _value_field(node: Node) -> str | None:
    """The field a value node reads (`{!$Record.X}` or `PRIORVALUE({!$Record.X})`), else None."""
    if isinstance(node, RecordField):
        return node.name
    if isinstance(node, Call) and node.function == "PRIORVALUE":
        (arg,) = node.args
        return arg.name if isinstance(arg, RecordField) else None
    return None


def _conditions(node: Node) -> Iterator[Node]:
    """The nodes in a boolean position: the root and the arguments of AND, OR and NOT."""
    yield node
    if isinstance(node, Call) and node.function in ("AND", "OR", "NOT"):
        for arg in node.args:
            yield from _conditions(arg)


# --- parser -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # merge, word, and, or, punctuation
    text: str
    position: int
    scope: str = ""
    name: str = ""


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            snippet = text[position : position + 20]
            raise FormulaError(f"unsupported formula syntax at {position}: {snippet!r}")
        kind = match.lastgroup or ""
        if kind in {"scope", "name"}:
            kind = "merge"
        if kind != "space":
            tokens.append(
                _Token(kind, match.group(), position, match.group("scope") or "", match.group("name") or "")
            )
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise FormulaError("the formula ends too early")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise FormulaError(f"expected {text!r} at {token.position}, found {token.text!r}")

    def parse(self) -> Node:
        node = self.expression()
        token = self.peek()
        if token is not None:
            raise FormulaError(f"unexpected {token.text!r} at {token.position}")
        return node

    def expression(self) -> Node:
        first = self.primary()
        operator = ""
        items = [first]
        while (token := self.peek()) is not None and token.kind in ("and", "or"):
            if operator and token.kind != operator:
                raise FormulaError(
                    f"&& and || mixed without parentheses at {token.position}; the sandbox reads one kind "
                    "per group"
                )
            operator = token.kind
            self.take()
            items.append(self.primary())
        if not operator:
            return first
        return Call("AND" if operator == "and" else "OR", tuple(items))

    def primary(self) -> Node:
        token = self.take()
        if token.text == "(":
            node = self.expression()
            self.expect(")")
            return node
        if token.kind == "merge":
            if token.scope == "Record":
                return RecordField(token.name)
            if token.scope == "Permission":
                return Permission(token.name)
            raise FormulaError(f"the merge field {token.text} is not read (only $Record and $Permission)")
        if token.kind == "word":
            word = token.text.upper()
            following = self.peek()
            if following is not None and following.text == "(":
                return self.call(word, token)
            if word in ("TRUE", "FALSE"):
                return Literal(word == "TRUE")
            raise FormulaError(f"the name {token.text!r} is not read (a field is written {{!$Record.Field}})")
        if token.kind in ("text", "number"):
            raise FormulaError(f"the {token.kind} literal {token.text} is not read (only TRUE and FALSE)")
        raise FormulaError(f"unexpected {token.text!r} at {token.position}")

    def call(self, function: str, token: _Token) -> Node:
        if function not in FUNCTIONS:
            raise FormulaError(f"the function {token.text}() is not read")
        self.expect("(")
        args: list[Node] = []
        following = self.peek()
        if following is None or following.text != ")":
            args.append(self.expression())
            while (following := self.peek()) is not None and following.text == ",":
                self.take()
                args.append(self.expression())
        self.expect(")")
        return _checked_call(function, tuple(args))


def _checked_call(function: str, args: tuple[Node, ...]) -> Call:
    if function in ("AND", "OR") and len(args) < 2:
        raise FormulaError(f"{function}() needs at least two conditions")
    if function == "NOT" and len(args) != 1:
        raise FormulaError("NOT() takes one condition")
    if function == "ISNEW" and args:
        raise FormulaError("ISNEW() takes no argument")
    if function in ("ISCHANGED", "PRIORVALUE") and (len(args) != 1 or not isinstance(args[0], RecordField)):
        raise FormulaError(f"{function}() takes one field, {{!$Record.Field}}")
    if function == "ISBLANK" and (len(args) != 1 or _value_field(args[0]) is None):
        raise FormulaError("ISBLANK() takes one field, {!$Record.Field} or PRIORVALUE({!$Record.Field})")
    if function in ("AND", "OR", "NOT"):
        for arg in args:
            if isinstance(arg, Call) and arg.function == "PRIORVALUE":
                continue  # a checkbox's prior value; its type is checked against the object
            if isinstance(arg, (RecordField, Permission, Literal)):
                continue
            if isinstance(arg, Call) and arg.function in BOOLEAN_FUNCTIONS:
                continue
            raise FormulaError(f"{function}() takes conditions")
    return Call(function, args)


@functools.lru_cache(maxsize=64)
def parse_formula(text: str) -> Formula:
    """The formula, or FormulaError naming what is not read."""
    if not text.strip():
        raise FormulaError("the formula is empty")
    return Formula(text, _Parser(text).parse())


# --- evaluation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    after: Record
    before: Record | None
    is_new: bool
    permissions: frozenset[str]

    def field(self, record: Record, name: str) -> Any:
        if name in record:
            return record[name]
        lowered = name.lower()
        for key, value in record.items():
            if key.lower() == lowered:
                return value
        return None

    def prior(self, name: str) -> Any:
        if self.is_new or self.before is None:
            return self.field(self.after, name)  # PRIORVALUE on a new record: the value being saved
        return self.field(self.before, name)

    def value(self, node: Node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, RecordField):
            return self.field(self.after, node.name)
        if isinstance(node, Permission):
            return node.name in self.permissions
        function, args = node.function, node.args
        if function == "AND":
            return all(self.truth(arg) for arg in args)
        if function == "OR":
            return any(self.truth(arg) for arg in args)
        if function == "NOT":
            return not self.truth(args[0])
        if function == "ISNEW":
            return self.is_new
        if function == "ISCHANGED":
            name = _value_field(args[0]) or ""
            if self.is_new or self.before is None:
                return False
            return _changed(self.field(self.before, name), self.field(self.after, name))
        if function == "PRIORVALUE":
            return self.prior(_value_field(args[0]) or "")
        if function == "ISBLANK":
            value = self.value(args[0])
            return value is None or value == ""
        raise FormulaError(f"the function {function}() is not read")  # pragma: no cover - parse refuses it

    def truth(self, node: Node) -> bool:
        return bool(self.value(node))


def _changed(before: Any, after: Any) -> bool:
    if before in (None, "") and after in (None, ""):
        return False
    return bool(before != after)


def evaluate_text(
    text: str,
    after: Record,
    before: Record | None,
    *,
    is_new: bool,
    permissions: frozenset[str] = frozenset(),
) -> bool:
    """Parse (cached) and evaluate a formula."""
    return parse_formula(text).evaluate(after, before, is_new=is_new, permissions=permissions)


def holders_json(holders: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, list[str]]:
    return {permission: list(users) for permission, users in holders}


def holders_from_json(payload: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if payload is None:
        return ()
    if not isinstance(payload, dict) or not all(
        isinstance(users, list) and all(isinstance(user, str) for user in users) for users in payload.values()
    ):
        raise ValueError("permission_holders must map each custom permission to a list of user ids")
    return tuple(sorted((str(permission), tuple(users)) for permission, users in payload.items()))
