"""Record filtering: the readByQuery query string language and the `query` function's XML filters.

Both are turned into the same small expression tree and evaluated against records. Semantics follow SQL as
Intacct runs it: a comparison with an empty (null) field is false, strings compare case-sensitively unless
asked otherwise, numbers compare as numbers and mm/dd/yyyy dates as dates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element

from sandbox.intacct.store import Record


class QueryError(ValueError):
    """A query string or filter that the gateway does not understand."""


@dataclass(frozen=True)
class Comparison:
    """`field <operator> values`; operators: = != < > <= >= like notlike in notin isnull isnotnull between."""

    field: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class AllOf:
    children: tuple[Expression, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Expression, ...]


@dataclass(frozen=True)
class Negation:
    child: Expression


Expression = Comparison | AllOf | AnyOf | Negation


def field_value(record: Record, path: str) -> str | None:
    """The value at a field path such as NAME or DISPLAYCONTACT.EMAIL1; None when absent or empty."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if value is None or isinstance(value, dict) or value == "":
        return None
    return str(value)


def fields_in(expression: Expression | None) -> list[str]:
    """Every field path an expression refers to."""
    if expression is None:
        return []
    if isinstance(expression, Comparison):
        return [expression.field]
    if isinstance(expression, Negation):
        return fields_in(expression.child)
    return [name for child in expression.children for name in fields_in(child)]


def matches(expression: Expression | None, record: Record, *, case_insensitive: bool = False) -> bool:
    """True if `record` satisfies `expression` (no expression matches everything)."""
    if expression is None:
        return True
    if isinstance(expression, AllOf):
        return all(matches(child, record, case_insensitive=case_insensitive) for child in expression.children)
    if isinstance(expression, AnyOf):
        return any(matches(child, record, case_insensitive=case_insensitive) for child in expression.children)
    if isinstance(expression, Negation):
        return not matches(expression.child, record, case_insensitive=case_insensitive)
    return _compare(field_value(record, expression.field), expression, case_insensitive)


def _compare(value: str | None, comparison: Comparison, case_insensitive: bool) -> bool:
    operator, operands = comparison.operator, comparison.values
    if operator == "isnull":
        return value is None
    if operator == "isnotnull":
        return value is not None
    if value is None:
        return False
    if operator in ("like", "notlike"):
        found = _like_pattern(operands[0], case_insensitive).fullmatch(value) is not None
        return found if operator == "like" else not found
    if operator in ("in", "notin"):
        found = any(_order(value, operand, case_insensitive) == 0 for operand in operands)
        return found if operator == "in" else not found
    if operator == "between":
        return (
            _order(value, operands[0], case_insensitive) >= 0
            and _order(value, operands[1], case_insensitive) <= 0
        )
    order = _order(value, operands[0], case_insensitive)
    checks: dict[str, Callable[[int], bool]] = {
        "=": lambda result: result == 0,
        "!=": lambda result: result != 0,
        "<": lambda result: result < 0,
        ">": lambda result: result > 0,
        "<=": lambda result: result <= 0,
        ">=": lambda result: result >= 0,
    }
    return checks[operator](order)


def _order(left: str, right: str, case_insensitive: bool) -> int:
    """-1, 0 or 1: numbers as numbers, dates as dates, otherwise strings."""
    left_key, right_key = _typed(left, case_insensitive), _typed(right, case_insensitive)
    if left_key[0] != right_key[0]:
        left_key, right_key = (2, _text(left, case_insensitive)), (2, _text(right, case_insensitive))
    return int(left_key[1] > right_key[1]) - int(left_key[1] < right_key[1])


def _text(value: str, case_insensitive: bool) -> str:
    return value.casefold() if case_insensitive else value


def _typed(value: str, case_insensitive: bool) -> tuple[int, Any]:
    number = _number(value)
    if number is not None:
        return 0, number
    moment = _date(value)
    if moment is not None:
        return 1, moment
    return 2, _text(value, case_insensitive)


def _number(value: str) -> Decimal | None:
    if not re.fullmatch(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*", value):
        return None
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        return None


_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S")


def _date(value: str) -> datetime | None:
    for date_format in _DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), date_format)
        except ValueError:
            continue
    return None


def _like_pattern(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    parts = ["." if char == "_" else ".*" if char == "%" else re.escape(char) for char in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def sort_records(
    records: Sequence[Record], order: Sequence[tuple[str, bool]], *, case_insensitive: bool = False
) -> list[Record]:
    """Records sorted by (field, ascending) pairs, first pair first; empty values sort last."""
    result = list(records)
    for path, ascending in reversed(order):
        present = [record for record in result if field_value(record, path) is not None]
        absent = [record for record in result if field_value(record, path) is None]
        present.sort(key=lambda record: _sort_key(record, path, case_insensitive), reverse=not ascending)
        result = present + absent
    return result


def _sort_key(record: Record, path: str, case_insensitive: bool) -> tuple[int, Any]:
    value = field_value(record, path)
    assert value is not None
    return _typed(value, case_insensitive)


# ------------------------------------------------------------------ readByQuery query strings

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:\\.|[^'\\])*')
      | (?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?![\w.]))
      | (?P<operator><=|>=|<>|!=|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(query):
        if query[position:].strip() == "":
            break
        found = _TOKEN.match(query, position)
        if found is None or found.lastgroup is None:
            raise QueryError(f"unexpected text at position {position}: {query[position : position + 20]!r}")
        text = found.group(found.lastgroup)
        if found.lastgroup == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Token(found.lastgroup, text))
        position = found.end()
    return tokens


class _QueryParser:
    """Recursive descent over: or := and (OR and)*; and := unary (AND unary)*; unary := NOT unary | atom."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def parse(self) -> Expression:
        expression = self._or()
        if self.position != len(self.tokens):
            raise QueryError(f"unexpected {self.tokens[self.position].text!r}")
        return expression

    def _peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _next(self, what: str) -> _Token:
        token = self._peek()
        if token is None:
            raise QueryError(f"the query ends where {what} was expected")
        self.position += 1
        return token

    def _keyword(self, *words: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.upper() in words:
            self.position += 1
            return True
        return False

    def _punct(self, char: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "punct" and token.text == char:
            self.position += 1
            return True
        return False

    def _or(self) -> Expression:
        children = [self._and()]
        while self._keyword("OR"):
            children.append(self._and())
        return children[0] if len(children) == 1 else AnyOf(tuple(children))

    def _and(self) -> Expression:
        children = [self._unary()]
        while self._keyword("AND"):
            children.append(self._unary())
        return children[0] if len(children) == 1 else AllOf(tuple(children))

    def _unary(self) -> Expression:
        if self._keyword("NOT"):
            return Negation(self._unary())
        if self._punct("("):
            expression = self._or()
            if not self._punct(")"):
                raise QueryError("a closing parenthesis is missing")
            return expression
        return self._comparison()

    def _comparison(self) -> Comparison:
        field_token = self._next("a field name")
        if field_token.kind != "word" or field_token.text.upper() in ("AND", "OR", "NOT", "IS", "IN", "LIKE"):
            raise QueryError(f"a field name was expected, not {field_token.text!r}")
        name = field_token.text.upper()
        if self._keyword("IS"):
            negated = self._keyword("NOT")
            if not self._keyword("NULL"):
                raise QueryError("IS must be followed by NULL or NOT NULL")
            return Comparison(name, "isnotnull" if negated else "isnull")
        negated = self._keyword("NOT")
        if self._keyword("LIKE"):
            return Comparison(name, "notlike" if negated else "like", (self._value(),))
        if self._keyword("IN"):
            return Comparison(name, "notin" if negated else "in", self._value_list())
        if negated:
            raise QueryError("NOT must be followed by LIKE or IN here")
        operator = self._next("an operator")
        if operator.kind != "operator":
            raise QueryError(f"an operator was expected after {name}, not {operator.text!r}")
        return Comparison(name, "!=" if operator.text == "<>" else operator.text, (self._value(),))

    def _value(self) -> str:
        token = self._next("a value")
        if token.kind not in ("string", "number"):
            raise QueryError(f"a quoted value or a number was expected, not {token.text!r}")
        return token.text

    def _value_list(self) -> tuple[str, ...]:
        if not self._punct("("):
            raise QueryError("IN must be followed by a parenthesised list")
        values = [self._value()]
        while self._punct(","):
            values.append(self._value())
        if not self._punct(")"):
            raise QueryError("the IN list is not closed")
        return tuple(values)


def parse_query_string(query: str) -> Expression | None:
    """Parse a readByQuery query string; an empty string means no filter."""
    tokens = _tokenize(query)
    if not tokens:
        return None
    return _QueryParser(tokens).parse()


# ------------------------------------------------------------------ query function filters

_FILTER_OPERATORS = {
    "equalto": "=",
    "notequalto": "!=",
    "lessthan": "<",
    "lessthanorequalto": "<=",
    "greaterthan": ">",
    "greaterthanorequalto": ">=",
    "like": "like",
    "notlike": "notlike",
    "in": "in",
    "notin": "notin",
    "isnull": "isnull",
    "isnotnull": "isnotnull",
    "between": "between",
}


def parse_filter(element: Element) -> Expression:
    """Parse one filter element of the `query` function (`<equalto>`, `<and>`, ...)."""
    tag = element.tag
    if tag in ("and", "or"):
        children = tuple(parse_filter(child) for child in element)
        if len(children) < 2:
            raise QueryError(f"<{tag}> needs at least two conditions")
        return AllOf(children) if tag == "and" else AnyOf(children)
    operator = _FILTER_OPERATORS.get(tag)
    if operator is None:
        raise QueryError(f"unknown filter operator <{tag}>")
    field_element = element.find("field")
    name = (field_element.text or "").strip().upper() if field_element is not None else ""
    if not name:
        raise QueryError(f"<{tag}> needs a <field>")
    values = tuple((value.text or "") for value in element.findall("value"))
    expected = {"isnull": 0, "isnotnull": 0, "between": 2}.get(operator, 1)
    if operator in ("in", "notin"):
        if not values:
            raise QueryError(f"<{tag}> needs at least one <value>")
    elif len(values) != expected:
        raise QueryError(f"<{tag}> needs {expected} <value> element(s)")
    return Comparison(name, operator, values)
