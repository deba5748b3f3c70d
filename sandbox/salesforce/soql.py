"""The SOQL subset the sandbox understands: a parser, a binder against the schema and an evaluator.

Supported: SELECT of fields and parent paths (Account.Name, PricebookEntry.Product2.ProductCode) and
one level of child subquery (SELECT ... FROM OpportunityLineItems WHERE ... ORDER BY ... LIMIT n);
FROM one object; WHERE with = != <> < > <= >=, IN / NOT IN, LIKE, AND / OR / NOT and parentheses
(AND and OR cannot be mixed without parentheses, as in Salesforce); string, number, boolean, null,
date and date-time literals and the relative date literals (TODAY, YESTERDAY, LAST_N_DAYS:n ...);
ORDER BY with ASC/DESC and NULLS FIRST/LAST; LIMIT and OFFSET. Anything else is MALFORMED_QUERY.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.salesforce.errors import ApiError, api_error, malformed_query
from sandbox.salesforce.ids import MalformedIdError, to_18
from sandbox.salesforce.schema import (
    NUMBER_TYPES,
    FieldSpec,
    FieldType,
    ObjectSpec,
    Schema,
    json_value,
    parse_datetime_text,
)
from sandbox.salesforce.store import Record, Store, record_attributes

MAX_OFFSET = 2000
KEYWORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "NULL",
        "TRUE",
        "FALSE",
        "GROUP",
        "HAVING",
        "WITH",
        "FOR",
        "TYPEOF",
        "USING",
        "INCLUDES",
        "EXCLUDES",
    }
)
COMPARISON_OPERATORS = ("=", "!=", "<>", "<", ">", "<=", ">=")
TEXT_FILTER_TYPES = frozenset(
    {
        FieldType.STRING,
        FieldType.TEXTAREA,
        FieldType.PICKLIST,
        FieldType.PHONE,
        FieldType.URL,
        FieldType.EMAIL,
    }
)
ID_TYPES = frozenset({FieldType.ID, FieldType.REFERENCE})
FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
RELATIONSHIP_HINT = (
    "If you are attempting to use a custom relationship, be sure to append the '__r' after the custom "
    "relationship name. Please reference your WSDL or the describe call for the appropriate names."
)

# --- tokens ----------------------------------------------------------------------------------------

TOKEN_PATTERN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<operator><=|>=|!=|<>|=|<|>)
  | (?P<punctuation>[(),:])
    """,
    re.VERBOSE,
)
STRING_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int

    @property
    def keyword(self) -> str:
        """The upper-cased text when the token is a bare name (keywords are case-insensitive)."""
        return self.text.upper() if self.kind == "name" else ""


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = TOKEN_PATTERN.match(text, position)
        if match is None:
            raise SoqlSyntaxError(text, position, f"unexpected token: '{text[position]}'")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


class SoqlSyntaxError(Exception):
    """A query Salesforce would refuse with MALFORMED_QUERY."""

    def __init__(self, query: str, position: int, detail: str) -> None:
        super().__init__(detail)
        self.query = query
        self.position = position
        self.detail = detail


def located(query: str, position: int, detail: str) -> str:
    """Salesforce's error text: the query, a caret under the position, the row and column, the detail."""
    line_start = query.rfind("\n", 0, position) + 1
    line_end = query.find("\n", position)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    row = query.count("\n", 0, position) + 1
    column = position - line_start
    return f"\n{line}\n{' ' * column}^\nERROR at Row:{row}:Column:{column + 1}\n{detail}"


# --- syntax tree -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    position: int


@dataclass(frozen=True)
class Literal:
    """A value in a filter: kind is string, number, boolean, null, date, datetime or relative."""

    kind: str
    value: Any
    text: str
    argument: int | None = None


@dataclass(frozen=True)
class Comparison:
    path: FieldPath
    operator: str
    literal: Literal


@dataclass(frozen=True)
class InList:
    path: FieldPath
    literals: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    path: FieldPath
    pattern: Literal


@dataclass(frozen=True)
class Junction:
    operator: str  # "AND" | "OR"
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    item: Condition


Condition = Comparison | InList | Like | Junction | Negation


@dataclass(frozen=True)
class OrderItem:
    path: FieldPath
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class SelectStatement:
    items: tuple[FieldPath | SelectStatement, ...]
    source: str
    source_position: int
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


class Parser:
    """Recursive descent over the token list."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.index = 0

    # token access

    def peek(self, offset: int = 0) -> Token | None:
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def error(self, detail: str | None = None) -> SoqlSyntaxError:
        token = self.peek()
        if token is None:
            return SoqlSyntaxError(self.query, len(self.query), detail or "unexpected end of query")
        return SoqlSyntaxError(self.query, token.position, detail or f"unexpected token: '{token.text}'")

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error()
        self.index += 1
        return token

    def at_keyword(self, *keywords: str) -> bool:
        token = self.peek()
        return token is not None and token.keyword in keywords

    def expect_keyword(self, keyword: str) -> Token:
        if not self.at_keyword(keyword):
            raise self.error()
        return self.take()

    def at_punctuation(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "punctuation" and token.text == text

    def expect_punctuation(self, text: str) -> Token:
        if not self.at_punctuation(text):
            raise self.error()
        return self.take()

    # grammar

    def parse(self) -> SelectStatement:
        statement = self.select(nested=False)
        if self.peek() is not None:
            raise self.error()
        return statement

    def select(self, *, nested: bool) -> SelectStatement:
        self.expect_keyword("SELECT")
        items: list[FieldPath | SelectStatement] = [self.select_item(nested=nested)]
        while self.at_punctuation(","):
            self.take()
            items.append(self.select_item(nested=nested))
        self.expect_keyword("FROM")
        source = self.take()
        if source.kind != "name" or source.keyword in KEYWORDS or "." in source.text:
            raise SoqlSyntaxError(self.query, source.position, f"unexpected token: '{source.text}'")
        where = None
        if self.at_keyword("WHERE"):
            self.take()
            where = self.condition()
        order_by: tuple[OrderItem, ...] = ()
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            order_by = self.order_items()
        limit = self.integer_clause("LIMIT")
        offset = self.integer_clause("OFFSET")
        return SelectStatement(tuple(items), source.text, source.position, where, order_by, limit, offset)

    def select_item(self, *, nested: bool) -> FieldPath | SelectStatement:
        if self.at_punctuation("("):
            if nested:
                raise self.error("Nesting of semi join sub-selects is not supported")
            self.take()
            subquery = self.select(nested=True)
            self.expect_punctuation(")")
            return subquery
        token = self.peek()
        if token is None or token.kind != "name" or token.keyword in KEYWORDS:
            raise self.error()
        self.take()
        if self.at_punctuation("("):
            raise SoqlSyntaxError(self.query, token.position, f"unexpected token: '{token.text}('")
        return FieldPath(tuple(token.text.split(".")), token.position)

    def integer_clause(self, keyword: str) -> int | None:
        if not self.at_keyword(keyword):
            return None
        self.take()
        token = self.take()
        if token.kind != "number" or not (token.text.isascii() and token.text.isdigit()):
            raise SoqlSyntaxError(self.query, token.position, f"unexpected token: '{token.text}'")
        return int(token.text)

    def order_items(self) -> tuple[OrderItem, ...]:
        items = [self.order_item()]
        while self.at_punctuation(","):
            self.take()
            items.append(self.order_item())
        return tuple(items)

    def order_item(self) -> OrderItem:
        path = self.field_path()
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.take().keyword == "DESC"
        nulls_first = not descending
        if self.at_keyword("NULLS"):
            self.take()
            if not self.at_keyword("FIRST", "LAST"):
                raise self.error()
            nulls_first = self.take().keyword == "FIRST"
        return OrderItem(path, descending, nulls_first)

    def field_path(self) -> FieldPath:
        token = self.peek()
        if token is None or token.kind != "name" or token.keyword in KEYWORDS:
            raise self.error()
        self.take()
        if self.at_punctuation("("):
            raise SoqlSyntaxError(self.query, token.position, f"unexpected token: '{token.text}('")
        return FieldPath(tuple(token.text.split(".")), token.position)

    def condition(self) -> Condition:
        first = self.unary()
        operator = ""
        items = [first]
        while self.at_keyword("AND", "OR"):
            token = self.take()
            if operator and token.keyword != operator:
                raise SoqlSyntaxError(self.query, token.position, f"unexpected token: '{token.text}'")
            operator = token.keyword
            items.append(self.unary())
        return first if not operator else Junction(operator, tuple(items))

    def unary(self) -> Condition:
        if self.at_keyword("NOT"):
            self.take()
            return Negation(self.unary())
        if self.at_punctuation("("):
            self.take()
            inner = self.condition()
            self.expect_punctuation(")")
            return inner
        return self.predicate()

    def predicate(self) -> Condition:
        path = self.field_path()
        token = self.peek()
        if token is None:
            raise self.error()
        if token.kind == "operator":
            self.take()
            return Comparison(path, "!=" if token.text == "<>" else token.text, self.literal())
        if token.keyword == "LIKE":
            self.take()
            pattern = self.literal()
            if pattern.kind != "string":
                raise SoqlSyntaxError(self.query, token.position, "LIKE needs a quoted string pattern")
            return Like(path, pattern)
        negated = False
        if token.keyword == "NOT":
            self.take()
            negated = True
        if self.at_keyword("IN"):
            self.take()
            self.expect_punctuation("(")
            if self.at_keyword("SELECT"):
                raise self.error("semi-join sub-selects are not supported by this org")
            literals = [self.literal()]
            while self.at_punctuation(","):
                self.take()
                literals.append(self.literal())
            self.expect_punctuation(")")
            return InList(path, tuple(literals), negated)
        raise self.error()

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            return Literal("string", unescape_string(token.text[1:-1]), token.text)
        if token.kind == "number":
            return Literal("number", float(token.text), token.text)
        if token.kind == "date":
            try:
                return Literal("date", date.fromisoformat(token.text), token.text)
            except ValueError as error:
                raise SoqlSyntaxError(self.query, token.position, f"invalid date: {token.text}") from error
        if token.kind == "datetime":
            parsed = parse_datetime_text(token.text)
            if parsed is None:
                raise SoqlSyntaxError(self.query, token.position, f"invalid date-time: {token.text}")
            return Literal("datetime", parsed, token.text)
        if token.keyword in ("TRUE", "FALSE"):
            return Literal("boolean", token.keyword == "TRUE", token.text)
        if token.keyword == "NULL":
            return Literal("null", None, token.text)
        if token.kind == "name" and "." not in token.text:
            keyword = token.text.upper()
            if keyword in RELATIVE_DATES:
                return Literal("relative", keyword, token.text)
            if keyword in RELATIVE_DATES_WITH_ARGUMENT:
                self.expect_punctuation(":")
                argument = self.take()
                if argument.kind != "number" or not (argument.text.isascii() and argument.text.isdigit()):
                    raise SoqlSyntaxError(
                        self.query, argument.position, f"unexpected token: '{argument.text}'"
                    )
                return Literal("relative", keyword, f"{token.text}:{argument.text}", int(argument.text))
        raise SoqlSyntaxError(self.query, token.position, f"unexpected token: '{token.text}'")


def unescape_string(body: str) -> str:
    """A quoted SOQL string's value (LIKE's \\% and \\_ stay escaped for the pattern compiler)."""
    result: list[str] = []
    index = 0
    while index < len(body):
        character = body[index]
        if character == "\\" and index + 1 < len(body):
            following = body[index + 1]
            if following in ("%", "_"):
                result.append("\\" + following)
            else:
                result.append(STRING_ESCAPES.get(following, following))
            index += 2
            continue
        result.append(character)
        index += 1
    return "".join(result)


def strip_like_escapes(text: str) -> str:
    return text.replace("\\%", "%").replace("\\_", "_")


# --- relative dates --------------------------------------------------------------------------------


def _month_start(day: date, months_ahead: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months_ahead
    return date(month_index // 12, month_index % 12 + 1, 1)


def _week_start(day: date) -> date:
    """Weeks start on Sunday (the default en_US locale)."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _month_range(today: date, months_ahead: int) -> tuple[date, date]:
    start = _month_start(today, months_ahead)
    return start, start + timedelta(days=calendar.monthrange(start.year, start.month)[1])


RELATIVE_DATES: dict[str, Callable[[date], tuple[date, date]]] = {
    "TODAY": lambda today: (today, today + timedelta(days=1)),
    "YESTERDAY": lambda today: (today - timedelta(days=1), today),
    "TOMORROW": lambda today: (today + timedelta(days=1), today + timedelta(days=2)),
    "THIS_WEEK": lambda today: (_week_start(today), _week_start(today) + timedelta(days=7)),
    "LAST_WEEK": lambda today: (_week_start(today) - timedelta(days=7), _week_start(today)),
    "NEXT_WEEK": lambda today: (
        _week_start(today) + timedelta(days=7),
        _week_start(today) + timedelta(days=14),
    ),
    "THIS_MONTH": lambda today: _month_range(today, 0),
    "LAST_MONTH": lambda today: _month_range(today, -1),
    "NEXT_MONTH": lambda today: _month_range(today, 1),
    "LAST_90_DAYS": lambda today: (today - timedelta(days=90), today + timedelta(days=1)),
    "NEXT_90_DAYS": lambda today: (today + timedelta(days=1), today + timedelta(days=91)),
    "THIS_YEAR": lambda today: (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
    "LAST_YEAR": lambda today: (date(today.year - 1, 1, 1), date(today.year, 1, 1)),
    "NEXT_YEAR": lambda today: (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
}
RELATIVE_DATES_WITH_ARGUMENT: dict[str, Callable[[date, int], tuple[date, date]]] = {
    "LAST_N_DAYS": lambda today, n: (today - timedelta(days=n), today + timedelta(days=1)),
    "NEXT_N_DAYS": lambda today, n: (today + timedelta(days=1), today + timedelta(days=n + 1)),
    "N_DAYS_AGO": lambda today, n: (today - timedelta(days=n), today - timedelta(days=n - 1)),
    "N_DAYS_FROM_NOW": lambda today, n: (today + timedelta(days=n), today + timedelta(days=n + 1)),
    "LAST_N_MONTHS": lambda today, n: (_month_start(today, -n), _month_start(today, 0)),
    "NEXT_N_MONTHS": lambda today, n: (_month_start(today, 1), _month_start(today, n + 1)),
}


def relative_range(literal: Literal, today: date) -> tuple[date, date]:
    """[start, end) of a relative date literal, in days."""
    if literal.argument is not None:
        return RELATIVE_DATES_WITH_ARGUMENT[literal.value](today, literal.argument)
    return RELATIVE_DATES[literal.value](today)


# --- binding against the schema ----------------------------------------------------------------------


@dataclass(frozen=True)
class BoundPath:
    """A field path resolved against the schema: the reference fields walked, then the final field."""

    references: tuple[FieldSpec, ...]
    target: FieldSpec
    owners: tuple[ObjectSpec, ...]  # the object each step starts from (len = len(references) + 1)

    @property
    def output_keys(self) -> tuple[str, ...]:
        return (*(spec.relationship_name or "" for spec in self.references), self.target.name)


@dataclass(frozen=True)
class BoundFilter:
    """A predicate bound to its field; evaluated against one record."""

    path: BoundPath
    kind: str  # compare | in | like
    operator: str
    literals: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True)
class BoundJunction:
    operator: str
    items: tuple[BoundCondition, ...]


@dataclass(frozen=True)
class BoundNegation:
    item: BoundCondition


BoundCondition = BoundFilter | BoundJunction | BoundNegation


@dataclass(frozen=True)
class BoundOrder:
    path: BoundPath
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class BoundChild:
    relationship_name: str
    parent_field: str
    query: BoundQuery


@dataclass(frozen=True)
class BoundQuery:
    spec: ObjectSpec
    items: tuple[BoundPath | BoundChild, ...]
    where: BoundCondition | None
    order_by: tuple[BoundOrder, ...]
    limit: int | None
    offset: int | None


class Binder:
    def __init__(self, query: str, schema: Schema) -> None:
        self.query = query
        self.schema = schema

    def fail(self, code: str, position: int, detail: str) -> ApiError:
        return api_error(400, code, located(self.query, position, detail))

    def bind(self, statement: SelectStatement) -> BoundQuery:
        spec = self.schema.object(statement.source)
        if spec is None:
            raise self.fail(
                "INVALID_TYPE",
                statement.source_position,
                f"sObject type '{statement.source}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
            )
        return self.bind_statement(spec, statement)

    def bind_statement(self, spec: ObjectSpec, statement: SelectStatement) -> BoundQuery:
        items: list[BoundPath | BoundChild] = []
        seen: set[tuple[str, ...]] = set()
        for item in statement.items:
            if isinstance(item, SelectStatement):
                items.append(self.bind_child(spec, item))
                continue
            bound = self.bind_path(spec, item)
            key = tuple(part.lower() for part in bound.output_keys)
            if key in seen:
                raise self.fail(
                    "MALFORMED_QUERY", item.position, f"duplicate field selected: {'.'.join(item.parts)}"
                )
            seen.add(key)
            items.append(bound)
        where = self.bind_condition(spec, statement.where) if statement.where is not None else None
        order_by = []
        for order in statement.order_by:
            path = self.bind_path(spec, order.path)
            if not path.target.filterable:
                raise self.fail(
                    "INVALID_FIELD",
                    order.path.position,
                    f"field '{path.target.name}' can not be sorted in a query call",
                )
            order_by.append(BoundOrder(path, order.descending, order.nulls_first))
        if statement.offset is not None and statement.offset > MAX_OFFSET:
            raise self.fail(
                "NUMBER_OUTSIDE_VALID_RANGE",
                statement.source_position,
                f"Maximum SOQL offset allowed is {MAX_OFFSET}",
            )
        return BoundQuery(spec, tuple(items), where, tuple(order_by), statement.limit, statement.offset)

    def bind_child(self, parent: ObjectSpec, statement: SelectStatement) -> BoundChild:
        relationship = parent.child(statement.source)
        if relationship is None:
            raise self.fail(
                "INVALID_TYPE",
                statement.source_position,
                f"Didn't understand relationship '{statement.source}' in FROM part of query call. "
                + RELATIONSHIP_HINT,
            )
        child_spec = self.schema[relationship.child_object]
        if statement.offset is not None:
            raise self.fail(
                "MALFORMED_QUERY", statement.source_position, "OFFSET is not allowed in a subquery"
            )
        return BoundChild(relationship.name, relationship.field, self.bind_statement(child_spec, statement))

    def bind_path(self, spec: ObjectSpec, path: FieldPath) -> BoundPath:
        references: list[FieldSpec] = []
        owners = [spec]
        current = spec
        for part in path.parts[:-1]:
            reference = current.relationship(part)
            if reference is None:
                raise self.fail(
                    "INVALID_FIELD",
                    path.position,
                    f"Didn't understand relationship '{part}' in field path. " + RELATIONSHIP_HINT,
                )
            references.append(reference)
            current = self.schema[reference.reference_to or ""]
            owners.append(current)
        target = current.field(path.parts[-1])
        if target is None:
            raise self.fail(
                "INVALID_FIELD",
                path.position,
                f"No such column '{path.parts[-1]}' on entity '{current.name}'. " + FIELD_HINT,
            )
        return BoundPath(tuple(references), target, tuple(owners))

    def bind_condition(self, spec: ObjectSpec, condition: Condition) -> BoundCondition:
        if isinstance(condition, Junction):
            return BoundJunction(
                condition.operator, tuple(self.bind_condition(spec, item) for item in condition.items)
            )
        if isinstance(condition, Negation):
            return BoundNegation(self.bind_condition(spec, condition.item))
        path = self.bind_path(spec, condition.path)
        target = path.target
        if not target.filterable:
            raise self.fail(
                "INVALID_FIELD",
                condition.path.position,
                f"field '{target.name}' can not be filtered in a query call",
            )
        if isinstance(condition, Comparison):
            literal = self.check_literal(target, condition.literal, condition.path.position)
            if literal.kind == "null" and condition.operator not in ("=", "!="):
                raise self.fail(
                    "MALFORMED_QUERY", condition.path.position, "null can only be compared with = or !="
                )
            if target.type is FieldType.BOOLEAN and condition.operator not in ("=", "!="):
                raise self.fail(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    condition.path.position,
                    f"invalid operator on boolean field: {target.name}",
                )
            return BoundFilter(path, "compare", condition.operator, (literal,))
        if isinstance(condition, InList):
            literals = tuple(
                self.check_literal(target, item, condition.path.position) for item in condition.literals
            )
            return BoundFilter(path, "in", "IN", literals, condition.negated)
        if target.type not in TEXT_FILTER_TYPES and target.type not in ID_TYPES:
            raise self.fail(
                "INVALID_QUERY_FILTER_OPERATOR",
                condition.path.position,
                f"invalid operator on {target.type.value} field: LIKE",
            )
        return BoundFilter(path, "like", "LIKE", (condition.pattern,))

    def check_literal(self, target: FieldSpec, literal: Literal, position: int) -> Literal:
        """The literal, checked (and ids normalised) for the field's type."""
        if literal.kind == "null":
            return literal
        field_type = target.type
        if field_type in ID_TYPES:
            if literal.kind != "string":
                raise self.type_error(target, "id", quoted=True, position=position)
            try:
                return Literal("string", to_18(strip_like_escapes(literal.value)), literal.text)
            except MalformedIdError as error:
                raise self.fail(
                    "INVALID_QUERY_FILTER_OPERATOR", position, f"invalid ID field: {literal.value}"
                ) from error
        expected = {
            FieldType.BOOLEAN: ("boolean", ("boolean",)),
            FieldType.DATE: ("date", ("date", "relative")),
            FieldType.DATETIME: ("dateTime", ("datetime", "relative")),
        }.get(field_type)
        if field_type in NUMBER_TYPES:
            expected = ("double", ("number",))
        if expected is None:
            if literal.kind != "string":
                raise self.type_error(target, "string", quoted=True, position=position)
            return Literal("string", strip_like_escapes(literal.value), literal.text)
        type_name, kinds = expected
        if literal.kind not in kinds:
            raise self.type_error(target, type_name, quoted=False, position=position)
        return literal

    def type_error(self, target: FieldSpec, type_name: str, *, quoted: bool, position: int) -> ApiError:
        quoting = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return self.fail(
            "INVALID_QUERY_FILTER_OPERATOR",
            position,
            f"value of filter criterion for field '{target.name}' must be of type {type_name} and {quoting}",
        )


def compile_query(query: str, schema: Schema) -> BoundQuery:
    """Parse and bind a SOQL query, or raise the ApiError Salesforce would answer."""
    if not query.strip():
        raise malformed_query("No SOQL query was provided")
    try:
        statement = Parser(query).parse()
    except SoqlSyntaxError as error:
        raise malformed_query(located(error.query, error.position, error.detail)) from error
    return Binder(query, schema).bind(statement)


# --- evaluation --------------------------------------------------------------------------------------


class Evaluator:
    """Runs a bound query against the store (the caller holds the store lock)."""

    def __init__(self, store: Store, api_version: str, today: date | None = None) -> None:
        self.store = store
        self.api_version = api_version
        self.today = today or datetime.now(UTC).date()

    def run(self, query: BoundQuery, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        records = self.store.every(query.spec.name) if include_deleted else self.store.live(query.spec.name)
        selected = self.select(query, records)
        children = {
            item.relationship_name: self.child_index(item)
            for item in query.items
            if isinstance(item, BoundChild)
        }
        return [self.shape(query, record, children) for record in selected]

    def select(self, query: BoundQuery, records: Sequence[Record], *, paginate: bool = True) -> list[Record]:
        """Filter, sort, then (unless paginate is False) apply OFFSET and LIMIT."""
        matching = [record for record in records if query.where is None or self.matches(query.where, record)]
        if query.order_by:
            matching.sort(
                key=functools.cmp_to_key(lambda left, right: self.compare_rows(query.order_by, left, right))
            )
        if not paginate:
            return matching
        start = query.offset or 0
        end = None if query.limit is None else start + query.limit
        return matching[start:end]

    def child_index(self, child: BoundChild) -> dict[str, list[Record]]:
        index: dict[str, list[Record]] = {}
        for record in self.select(child.query, self.store.live(child.query.spec.name), paginate=False):
            index.setdefault(record[child.parent_field], []).append(record)
        return index

    def shape(
        self, query: BoundQuery, record: Record, children: dict[str, dict[str, list[Record]]]
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "attributes": record_attributes(query.spec.name, record["Id"], self.api_version)
        }
        for item in query.items:
            if isinstance(item, BoundChild):
                child_records = children[item.relationship_name].get(record["Id"], [])
                limit = item.query.limit
                if limit is not None:
                    child_records = child_records[:limit]
                row[item.relationship_name] = (
                    {
                        "totalSize": len(child_records),
                        "done": True,
                        "records": [self.shape(item.query, child, {}) for child in child_records],
                    }
                    if child_records
                    else None
                )
                continue
            self.place(row, item, record)
        return row

    def place(self, row: dict[str, Any], path: BoundPath, record: Record) -> None:
        """Put the path's value into the row, nesting parent objects (or null when a parent is absent)."""
        container = row
        current: Record | None = record
        for reference in path.references:
            key = reference.relationship_name or ""
            parent = self.parent(current, reference) if current is not None else None
            if key not in container:
                container[key] = (
                    None
                    if parent is None
                    else {
                        "attributes": record_attributes(
                            reference.reference_to or "", parent["Id"], self.api_version
                        )
                    }
                )
            nested = container[key]
            if nested is None:
                return
            container = nested
            current = parent
        if current is not None:
            container[path.target.name] = json_value(path.target, current.get(path.target.name))

    def parent(self, record: Record, reference: FieldSpec) -> Record | None:
        parent_id = record.get(reference.name)
        if parent_id is None:
            return None
        parent = self.store.get(reference.reference_to or "", parent_id)
        if parent is None or parent["IsDeleted"]:
            return None
        return parent

    def value(self, path: BoundPath, record: Record) -> Any:
        current: Record | None = record
        for reference in path.references:
            if current is None:
                return None
            current = self.parent(current, reference)
        return None if current is None else current.get(path.target.name)

    # filters

    def matches(self, condition: BoundCondition, record: Record) -> bool:
        if isinstance(condition, BoundJunction):
            results = (self.matches(item, record) for item in condition.items)
            return all(results) if condition.operator == "AND" else any(results)
        if isinstance(condition, BoundNegation):
            return not self.matches(condition.item, record)
        value = self.value(condition.path, record)
        target = condition.path.target
        if condition.kind == "like":
            if value is None:
                return False
            return like_regex(condition.literals[0].value).fullmatch(str(value)) is not None
        if condition.kind == "in":
            found = any(self.compare(target, value, "=", literal) for literal in condition.literals)
            return not found if condition.negated else found
        return self.compare(target, value, condition.operator, condition.literals[0])

    def compare(self, target: FieldSpec, value: Any, operator: str, literal: Literal) -> bool:
        if literal.kind == "null":
            is_null = value is None
            return is_null if operator == "=" else not is_null
        if literal.kind == "relative":
            return self.compare_range(target, value, operator, relative_range(literal, self.today))
        if value is None:
            return operator == "!="
        left, right = comparable(target, value), comparable(target, literal.value)
        return apply_operator(operator, left, right)

    def compare_range(self, target: FieldSpec, value: Any, operator: str, days: tuple[date, date]) -> bool:
        if value is None:
            return operator == "!="
        start: Any
        end: Any
        start, end = days
        if target.type is FieldType.DATETIME:
            start = datetime(start.year, start.month, start.day, tzinfo=UTC)
            end = datetime(end.year, end.month, end.day, tzinfo=UTC)
        inside = start <= value < end
        outcomes: dict[str, bool] = {
            "=": inside,
            "!=": not inside,
            "<": bool(value < start),
            "<=": bool(value < end),
            ">": bool(value >= end),
            ">=": bool(value >= start),
        }
        return outcomes[operator]

    def compare_rows(self, order_by: Sequence[BoundOrder], left: Record, right: Record) -> int:
        for order in order_by:
            left_value = self.value(order.path, left)
            right_value = self.value(order.path, right)
            if left_value is None and right_value is None:
                continue
            if left_value is None or right_value is None:
                left_first = (left_value is None) == order.nulls_first
                return -1 if left_first else 1
            left_key = comparable(order.path.target, left_value)
            right_key = comparable(order.path.target, right_value)
            if left_key == right_key:
                continue
            result = -1 if left_key < right_key else 1
            return -result if order.descending else result
        return 0


def comparable(target: FieldSpec, value: Any) -> Any:
    """A value in the form comparisons use: text case-insensitive, numbers as floats, ids as 18 chars."""
    if target.type in TEXT_FILTER_TYPES:
        return str(value).casefold()
    if target.type in NUMBER_TYPES:
        return float(value)
    return value


def apply_operator(operator: str, left: Any, right: Any) -> bool:
    if operator == "=":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


@functools.lru_cache(maxsize=256)
def like_regex(pattern: str) -> re.Pattern[str]:
    """LIKE's % and _ wildcards (\\% and \\_ match themselves), case-insensitive."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if character == "\\" and index + 1 < len(pattern) and pattern[index + 1] in "%_":
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        if character == "%":
            parts.append(".*")
        elif character == "_":
            parts.append(".")
        else:
            parts.append(re.escape(character))
        index += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def run_query(
    store: Store, query: str, api_version: str, *, include_deleted: bool = False
) -> list[dict[str, Any]]:
    """Compile and run a query; the shaped result rows."""
    bound = compile_query(query, store.schema)
    return Evaluator(store, api_version).run(bound, include_deleted=include_deleted)
