"""The subset of Salesforce formula syntax the sandbox reads in a record-triggered flow's entry condition
(`<filterFormula>` of the flow's start) and in a text formula field: a small, explicit parser and
evaluator.

Read in an entry condition (`parse_formula`):

- merge fields `{!$Record.Field}` (the triggering record), `{!$Record.Parent.Field}` (a field of a record
  it looks up, e.g. `{!$Record.Account.Intacct_In_Collections__c}`) and `{!$Permission.Name}` (whether
  the running user holds the custom permission);
- the boolean literals `TRUE` and `FALSE`;
- the functions `AND(a, b, ...)`, `OR(a, b, ...)`, `NOT(a)`, `ISNEW()`, `ISCHANGED({!$Record.Field})`,
  `PRIORVALUE({!$Record.Field})` and `ISBLANK(value)`, names in any case;
- the operators `&&` and `||` (one kind per parenthesised group: a mix needs parentheses here);
- parentheses, spaces and line breaks.

Read in a formula field (`parse_field_formula`, the `<formula>` of a Text formula field): field names as
formula fields write them (`Name`, `Account.Intacct_Days_Past_Due__c`), text literals in double quotes,
`TRUE`/`FALSE`, the `&` operator (joins text), and the functions `IF(condition, a, b)`,
`TEXT(number field)`, `AND`, `OR`, `NOT` and `ISBLANK`.

Merge text (`merge_text_fields`, `render_merge_text`): text with `{!$Record.Field}` or
`{!$Record.Parent.Field}` merge fields, as a flow's Custom Error message holds them.

Anything else (other functions, comparisons, number literals, `$Record__Prior`, other global variables)
raises `FormulaError` naming the construct, rather than being read wrongly.

Evaluation follows Salesforce's descriptions of the functions: ISNEW() is true while a record is
created; ISCHANGED() is false on a new record and otherwise true when the value differs from the prior
one; PRIORVALUE() on a new record is the value being saved; ISBLANK() is true for no value or empty text.
A field of a parent record is read through `related(path)`, which the caller gives (the store finds the
record the path's lookups point to); no parent record means no value. TEXT() writes a number without
trailing zeros ("130", "12.5"); a blank number is "0" when the field's formula treats blanks as zeros
(`formulaTreatBlanksAs` BlankAsZero), else "". A text formula that comes out empty is no value (null).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from typing import Literal as TypingLiteral

Record = Mapping[str, Any]
# The record a lookup path of the triggering record points to ("Account" -> its Account), or None.
Related = Callable[[str], Record | None]
Dialect = TypingLiteral["flow", "field"]

_PATH = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*"
_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<merge>\{{!\$(?P<scope>[A-Za-z_][A-Za-z0-9_]*)\.(?P<name>{_PATH})\}})
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<text>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<and>&&)
  | (?P<or>\|\|)
  | (?P<concat>&)
  | (?P<punctuation>[(),])
    """,
    re.VERBOSE,
)
_MERGE_FIELD = re.compile(r"\{!\$(?P<scope>[A-Za-z_][A-Za-z0-9_]*)\.(?P<name>[^}]*)\}")
BOOLEAN_FUNCTIONS = frozenset({"AND", "OR", "NOT", "ISNEW", "ISCHANGED", "ISBLANK"})
FUNCTIONS = BOOLEAN_FUNCTIONS | {"PRIORVALUE"}
# A formula field reads no save (ISNEW, ISCHANGED, PRIORVALUE) and no running user.
FIELD_FUNCTIONS = frozenset({"AND", "OR", "NOT", "ISBLANK", "IF", "TEXT"})
NUMBER_FIELD_TYPES = frozenset({"double", "currency", "percent", "int"})


class FormulaError(ValueError):
    """A formula outside the subset read here; the message names the construct."""


# --- syntax tree ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: bool


@dataclass(frozen=True)
class Text:
    """A text literal of a formula field, e.g. `"days past due"`."""

    value: str


@dataclass(frozen=True)
class RecordField:
    """`{!$Record.Field}` (a formula field's `Field`); `name` may be a path through lookups,
    `Account.Intacct_In_Collections__c`."""

    name: str

    @property
    def is_path(self) -> bool:
        return "." in self.name


@dataclass(frozen=True)
class Permission:
    """`{!$Permission.Name}`."""

    name: str


@dataclass(frozen=True)
class Call:
    """A function call; `&&` and `||` are read as AND and OR."""

    function: str
    args: tuple[Node, ...]


Node = Literal | Text | RecordField | Permission | Call


@dataclass(frozen=True)
class Formula:
    text: str
    root: Node
    dialect: Dialect = "flow"  # "field": a formula field's, whose value is no condition

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

    @property
    def relationships(self) -> frozenset[str]:
        """The lookup paths the formula reads fields through ("Account" for Account.Name)."""
        return frozenset(name.rpartition(".")[0] for name in self.fields if "." in name)

    def check_fields(self, field_type: Callable[[str], str | None]) -> None:
        """Check the fields against the object: `field_type(name)` is the field's type ("boolean", ...)
        or None when the object has no such field (`name` may be a path through lookups). A field used as
        a condition must be a boolean; TEXT() takes a number field."""
        for name in sorted(self.fields):
            if field_type(name) is None:
                raise FormulaError(f"the formula names {{!$Record.{name}}}, a field the object does not have")
        for node in _conditions(self.root, root=self.dialect == "flow"):
            used = _value_field(node)
            if used is not None and field_type(used) != "boolean":
                raise FormulaError(
                    f"{{!$Record.{used}}} is used as a condition but is not a checkbox (boolean) field"
                )
        for node in _walk(self.root):
            if isinstance(node, Call) and node.function == "TEXT":
                used = _value_field(node.args[0]) or ""
                if field_type(used) not in NUMBER_FIELD_TYPES:
                    raise FormulaError(f"TEXT() is read for number fields only, not {used}")

    def evaluate(
        self,
        after: Record,
        before: Record | None,
        *,
        is_new: bool,
        permissions: frozenset[str],
        related: Related | None = None,
    ) -> bool:
        """Whether the formula holds for a save: `after` the record as saved, `before` as it was (None on
        create), `permissions` the custom permissions the running user holds, `related` the records its
        lookups point to."""
        context = _Context(after, before, is_new, permissions, related)
        return bool(context.value(self.root))

    def value(self, record: Record, *, related: Related | None = None, blanks_as_zero: bool = False) -> Any:
        """A formula field's value on `record` (empty text is None)."""
        context = _Context(record, None, False, frozenset(), related, blanks_as_zero)
        result = context.value(self.root)
        return None if result == "" else result


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


def _conditions(node: Node, *, root: bool = True) -> Iterator[Node]:
    """The nodes in a boolean position: the root (unless it is IF), the arguments of AND, OR and NOT,
    and the first argument of IF, wherever it is."""
    if root and not (isinstance(node, Call) and node.function in ("IF", "CONCAT", "TEXT")):
        yield node
    if isinstance(node, Call) and node.function in ("AND", "OR", "NOT"):
        for arg in node.args:
            yield arg
            yield from _conditions(arg, root=False)
    elif isinstance(node, Call):
        if node.function == "IF":
            yield node.args[0]
        for arg in node.args:
            yield from _conditions(arg, root=False)


# --- parser -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # merge, word, text, number, and, or, concat, punctuation
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
    def __init__(self, text: str, dialect: Dialect = "flow") -> None:
        self.text = text
        self.dialect = dialect
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
        first = self.joined()
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
            items.append(self.joined())
        if not operator:
            return first
        return Call("AND" if operator == "and" else "OR", tuple(items))

    def joined(self) -> Node:
        """`a & b & ...` (text joined; formula fields only), or one primary."""
        items = [self.primary()]
        while (token := self.peek()) is not None and token.kind == "concat":
            if self.dialect != "field":
                raise FormulaError(f"the & operator at {token.position} is read in formula fields only")
            self.take()
            items.append(self.primary())
        return items[0] if len(items) == 1 else _checked_call("CONCAT", tuple(items), self.dialect)

    def primary(self) -> Node:
        token = self.take()
        if token.text == "(":
            node = self.expression()
            self.expect(")")
            return node
        if token.kind == "merge":
            if self.dialect == "field":
                raise FormulaError(f"the merge field {token.text} is not read in a formula field")
            if token.scope == "Record":
                return RecordField(token.name)
            if token.scope == "Permission" and "." not in token.name:
                return Permission(token.name)
            raise FormulaError(f"the merge field {token.text} is not read (only $Record and $Permission)")
        if token.kind == "word":
            word = token.text.upper()
            following = self.peek()
            if following is not None and following.text == "(":
                return self.call(word, token)
            if word in ("TRUE", "FALSE"):
                return Literal(word == "TRUE")
            if self.dialect == "field":
                return RecordField(token.text)
            raise FormulaError(f"the name {token.text!r} is not read (a field is written {{!$Record.Field}})")
        if token.kind == "text" and self.dialect == "field":
            if not token.text.startswith('"'):
                raise FormulaError(f"the text literal {token.text} is not read (double quotes only)")
            return Text(re.sub(r"\\(.)", r"\1", token.text[1:-1]))
        if token.kind in ("text", "number"):
            allowed = "TRUE, FALSE and text" if self.dialect == "field" else "TRUE and FALSE"
            raise FormulaError(f"the {token.kind} literal {token.text} is not read (only {allowed})")
        raise FormulaError(f"unexpected {token.text!r} at {token.position}")

    def call(self, function: str, token: _Token) -> Node:
        if function not in (FIELD_FUNCTIONS if self.dialect == "field" else FUNCTIONS):
            where = " in a formula field" if self.dialect == "field" else ""
            raise FormulaError(f"the function {token.text}(){where} is not read")
        self.expect("(")
        args: list[Node] = []
        following = self.peek()
        if following is None or following.text != ")":
            args.append(self.expression())
            while (following := self.peek()) is not None and following.text == ",":
                self.take()
                args.append(self.expression())
        self.expect(")")
        return _checked_call(function, tuple(args), self.dialect)


def _checked_call(function: str, args: tuple[Node, ...], dialect: Dialect = "flow") -> Call:
    if function in ("AND", "OR") and len(args) < 2:
        raise FormulaError(f"{function}() needs at least two conditions")
    if function == "NOT" and len(args) != 1:
        raise FormulaError("NOT() takes one condition")
    if function == "ISNEW" and args:
        raise FormulaError("ISNEW() takes no argument")
    if function in ("ISCHANGED", "PRIORVALUE") and (
        len(args) != 1 or not isinstance(args[0], RecordField) or args[0].is_path
    ):
        raise FormulaError(f"{function}() takes one field, {{!$Record.Field}}, of the record itself")
    if function == "ISBLANK" and (len(args) != 1 or _value_field(args[0]) is None):
        raise FormulaError("ISBLANK() takes one field, {!$Record.Field} or PRIORVALUE({!$Record.Field})")
    if function == "IF" and len(args) != 3:
        raise FormulaError("IF() takes a condition and two values")
    if function == "TEXT" and (len(args) != 1 or not isinstance(args[0], RecordField)):
        raise FormulaError("TEXT() takes one field")
    if function in ("AND", "OR", "NOT") or (function == "IF" and args):
        for arg in args if function != "IF" else args[:1]:
            if isinstance(arg, Call) and arg.function == "PRIORVALUE":
                continue  # a checkbox's prior value; its type is checked against the object
            if isinstance(arg, (RecordField, Permission, Literal)):
                continue
            if isinstance(arg, Call) and arg.function in BOOLEAN_FUNCTIONS:
                continue
            raise FormulaError(f"{function}() takes conditions")
    if function == "CONCAT":
        for arg in args:
            if isinstance(arg, (Literal, Permission)) or (
                isinstance(arg, Call) and arg.function in BOOLEAN_FUNCTIONS
            ):
                raise FormulaError("& joins text: text literals, text fields, TEXT() and IF()")
    return Call(function, args)


@functools.lru_cache(maxsize=64)
def parse_formula(text: str) -> Formula:
    """An entry condition's formula, or FormulaError naming what is not read."""
    if not text.strip():
        raise FormulaError("the formula is empty")
    return Formula(text, _Parser(text).parse())


@functools.lru_cache(maxsize=64)
def parse_field_formula(text: str) -> Formula:
    """A Text formula field's formula, or FormulaError naming what is not read."""
    if not text.strip():
        raise FormulaError("the formula is empty")
    return Formula(text, _Parser(text, "field").parse(), "field")


def merge_text_fields(text: str) -> tuple[str, ...]:
    """The `$Record` fields (paths) merged into `text`, in order; FormulaError for any other merge."""
    fields: list[str] = []
    for match in _MERGE_FIELD.finditer(text):
        name = match.group("name")
        if match.group("scope") != "Record" or re.fullmatch(_PATH, name) is None:
            raise FormulaError(f"the merge field {match.group()} is not read (only {{!$Record.Field}})")
        fields.append(name)
    return tuple(fields)


def render_merge_text(text: str, record: Record, *, related: Related | None = None) -> str:
    """`text` with each `{!$Record.Field}` replaced by the field's value (blank: nothing)."""
    merge_text_fields(text)
    context = _Context(record, None, False, frozenset(), related)
    return _MERGE_FIELD.sub(lambda match: _text_of(context.field(record, match.group("name"))), text)


# --- evaluation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    after: Record
    before: Record | None
    is_new: bool
    permissions: frozenset[str]
    related: Related | None = None
    blanks_as_zero: bool = False

    def field(self, record: Record, name: str) -> Any:
        if "." in name:  # a field of a parent of the triggering record
            path, _, field_name = name.rpartition(".")
            parent = self.related(path) if self.related is not None else None
            return None if parent is None else self.field(parent, field_name)
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
        if isinstance(node, (Literal, Text)):
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
        if function == "IF":
            return self.value(args[1]) if self.truth(args[0]) else self.value(args[2])
        if function == "TEXT":
            value = self.value(args[0])
            return "0" if value is None and self.blanks_as_zero else _text_of(value)
        if function == "CONCAT":
            return "".join(_text_of(self.value(arg)) for arg in args)
        raise FormulaError(f"the function {function}() is not read")  # pragma: no cover - parse refuses it

    def truth(self, node: Node) -> bool:
        return bool(self.value(node))


def _text_of(value: Any) -> str:
    """A value as formula text: numbers without trailing zeros ("130", "12.5"), blank as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(str(value)).normalize()
        return format(number.quantize(Decimal(1)) if number == number.to_integral() else number, "f")
    return str(value)


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
