"""The rule language: a small, safe expression language that staff write rules in.

A rule is one condition, e.g.

    event == "payment" and payee_is_new and amount >= yuan(50000)
    distinct(payee_account, "payers", "24h") >= 10 or on_list("police", payee)

Text is tokenised, parsed by recursive descent, checked for types, and compiled into Python
closures over an environment (a dict of the values a decision gathered). Nothing staff write
is ever handed to `eval`, `exec` or Python's parser: a name is one of the known fields, a call
one of the known functions, and there is no attribute access, indexing, assignment or loop.
Input is bounded (length, tokens, nesting, list size, number size), so compiling and running
a rule takes time proportional to its short text.

Numbers are integers (amounts in fen) or exact decimals (`Fraction`, never float); dividing by
zero gives 0, so a rule never fails at run time for want of history.

Grammar (lowest precedence first):
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum [("==" | "!=" | "<" | "<=" | ">" | ">=") sum | ["not"] "in" list]
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/" | "%") unary)*
    unary   := "-" unary | primary
    primary := NUMBER | STRING | "true" | "false" | NAME | NAME "(" args ")" | "(" or ")"
    list    := "[" literal ("," literal)* "]"
"""

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ebank.core.errors import EbankError

MAX_LENGTH = 2000
MAX_TOKENS = 400
MAX_DEPTH = 24
MAX_LIST = 50
MAX_ARGS = 8
MAX_NUMBER = 10**15
MAX_STRING = 100

NUM, BOOL, STR = "number", "true/false", "text"
Env = Mapping[Any, Any]
Fn = Callable[[Env], Any]


@dataclass(frozen=True, slots=True)
class Aggregate:
    """`count`, `sum` or `distinct` of a metric of an entity over a window: the last `window[1]`
    buckets of `window[0]` seconds, the current one included."""

    fn: str
    entity: str
    metric: str
    window: tuple[int, int]
    label: str = field(compare=False)  # as written, for evidence: sum(account,"inflow","24h")

    @property
    def key(self) -> str:
        """Its name in a decision's environment (a str: hashed once, compared fast)."""
        return f"{self.fn}:{self.entity}:{self.metric}:{self.window[0]}:{self.window[1]}"


@dataclass(frozen=True, slots=True)
class ListCheck:
    """Whether the entity's key is on the watch list."""

    list: str
    entity: str
    label: str = field(compare=False)

    @property
    def key(self) -> str:
        return f"on_list:{self.list}:{self.entity}"


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What a rule may name: fields with their types, entities (with aliases), the metrics of
    each entity for count/sum and for distinct, the watch lists, and how windows are read."""

    fields: Mapping[str, str]
    entities: Mapping[str, str]  # name as written -> canonical entity
    summed: Mapping[str, frozenset[str]]  # entity -> metrics for count() and sum()
    distinct: Mapping[str, frozenset[str]]  # entity -> metrics for distinct()
    lists: frozenset[str]
    window: Callable[[str], tuple[int, int] | None]  # "24h" -> (3600, 24); None: not allowed


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled condition and what it needs gathered before it can run."""

    test: Callable[[Env], bool]
    fields: frozenset[str]
    aggregates: frozenset[Aggregate]
    lists: frozenset[ListCheck]


def compile_rule(text: str, vocabulary: Vocabulary) -> Compiled:
    """Compile a condition; INVALID_INPUT (with the position) if it is not a valid one."""
    if not isinstance(text, str) or not text.strip():
        raise EbankError("INVALID_INPUT", reason="a rule's condition is text", position=0)
    if len(text) > MAX_LENGTH:
        _fail(f"a condition is at most {MAX_LENGTH} characters", MAX_LENGTH)
    parser = _Parser(_tokens(text), vocabulary)
    node = parser.disjunction()
    token = parser.peek()
    if token.kind != "end":
        _fail(f"unexpected {token.text!r}", token.pos)
    if node.type != BOOL:
        _fail(f"a condition must be true or false, not a {node.type}", 0)
    return Compiled(
        node.fn, frozenset(parser.fields), frozenset(parser.aggregates), frozenset(parser.lists)
    )


def _fail(message: str, pos: int) -> Any:
    raise EbankError("INVALID_INPUT", reason=f"{message} at position {pos}", position=pos)


# -- tokens ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number | string | name | op | end
    text: str
    pos: int


_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>\d+(?:_\d+)*(?:\.\d+)?)
      | (?P<string>"(?:[^"\\\n]|\\["\\])*"|'(?:[^'\\\n]|\\['\\])*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<=|>=|[<>+\-*/%(),\[\]])""",
    re.VERBOSE | re.ASCII,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            _fail(f"unexpected character {text[pos]!r}", pos)
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            found.append(_Token(kind, match.group(), pos))
            if len(found) > MAX_TOKENS:
                _fail(f"a condition has at most {MAX_TOKENS} tokens", pos)
        pos = match.end()
    found.append(_Token("end", "end of the condition", len(text)))
    return found


# -- typed nodes -------------------------------------------------------------------------------
_NOT_CONSTANT = object()


@dataclass(frozen=True, slots=True)
class _Node:
    type: str
    fn: Fn
    value: Any = _NOT_CONSTANT  # known at compile time

    @property
    def constant(self) -> bool:
        return self.value is not _NOT_CONSTANT


def _constant(type_: str, value: Any) -> _Node:
    return _Node(type_, lambda env: value, value)


def _divide(a: Any, b: Any) -> Any:
    if not b:
        return 0
    quotient = Fraction(a) / Fraction(b)
    return quotient.numerator if quotient.denominator == 1 else quotient


def _modulo(a: Any, b: Any) -> Any:
    return a % b if b else 0


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}  # fmt: skip
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _divide, "%": _modulo,
}  # fmt: skip


def _binary(type_: str, op: Callable[[Any, Any], Any], a: _Node, b: _Node) -> _Node:
    """`op` of two nodes: folded when both are known, a closure otherwise."""
    if a.constant and b.constant:
        return _constant(type_, op(a.value, b.value))
    fa, fb = a.fn, b.fn
    if b.constant:
        right = b.value
        return _Node(type_, lambda env: op(fa(env), right))
    if a.constant:
        left = a.value
        return _Node(type_, lambda env: op(left, fb(env)))
    return _Node(type_, lambda env: op(fa(env), fb(env)))


def _all(nodes: list[_Node]) -> _Node:
    fns = [n.fn for n in nodes if not (n.constant and n.value)]
    if any(n.constant and not n.value for n in nodes):
        return _constant(BOOL, False)
    if not fns:
        return _constant(BOOL, True)
    if len(fns) == 1:
        return _Node(BOOL, fns[0])
    first, rest = fns[0], _all([_Node(BOOL, f) for f in fns[1:]]).fn
    return _Node(BOOL, lambda env: first(env) and rest(env))


def _any(nodes: list[_Node]) -> _Node:
    fns = [n.fn for n in nodes if not (n.constant and not n.value)]
    if any(n.constant and n.value for n in nodes):
        return _constant(BOOL, True)
    if not fns:
        return _constant(BOOL, False)
    if len(fns) == 1:
        return _Node(BOOL, fns[0])
    first, rest = fns[0], _any([_Node(BOOL, f) for f in fns[1:]]).fn
    return _Node(BOOL, lambda env: first(env) or rest(env))


# -- the parser --------------------------------------------------------------------------------
class _Parser:
    def __init__(self, tokens: list[_Token], vocabulary: Vocabulary) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0
        self.vocabulary = vocabulary
        self.fields: set[str] = set()
        self.aggregates: set[Aggregate] = set()
        self.lists: set[ListCheck] = set()

    # helpers
    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def accept(self, *texts: str) -> _Token | None:
        token = self.peek()
        if token.kind in ("op", "name") and token.text in texts:
            self.at += 1
            return token
        return None

    def expect(self, text: str) -> _Token:
        token = self.accept(text)
        if token is None:
            found = self.peek()
            _fail(f"expected {text!r} but found {found.text!r}", found.pos)
        return token  # type: ignore[return-value]

    def nested(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _fail(f"nested more than {MAX_DEPTH} levels deep", pos)

    @staticmethod
    def want(node: _Node, type_: str, token: _Token, what: str) -> None:
        if node.type != type_:
            _fail(f"{what} needs a {type_}, not a {node.type}", token.pos)

    # grammar
    def disjunction(self) -> _Node:
        start = self.peek()
        nodes = [self.conjunction()]
        while (token := self.accept("or")) is not None:
            nodes.append(self.conjunction())
            self.want(nodes[-1], BOOL, token, "'or'")
        if len(nodes) == 1:
            return nodes[0]
        self.want(nodes[0], BOOL, start, "'or'")
        return _any(nodes)

    def conjunction(self) -> _Node:
        start = self.peek()
        nodes = [self.negation()]
        while (token := self.accept("and")) is not None:
            nodes.append(self.negation())
            self.want(nodes[-1], BOOL, token, "'and'")
        if len(nodes) == 1:
            return nodes[0]
        self.want(nodes[0], BOOL, start, "'and'")
        return _all(nodes)

    def negation(self) -> _Node:
        token = self.accept("not")
        if token is None:
            return self.comparison()
        self.nested(token.pos)
        node = self.negation()
        self.depth -= 1
        self.want(node, BOOL, token, "'not'")
        if node.constant:
            return _constant(BOOL, not node.value)
        fn = node.fn
        return _Node(BOOL, lambda env: not fn(env))

    def comparison(self) -> _Node:
        left = self.addition()
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARE:
            self.take()
            right = self.addition()
            if left.type != right.type:
                _fail(f"cannot compare a {left.type} with a {right.type}", token.pos)
            if token.text not in ("==", "!=") and left.type != NUM:
                _fail(f"{token.text!r} compares numbers", token.pos)
            node = _binary(BOOL, _COMPARE[token.text], left, right)
        elif token.kind == "name" and token.text in ("in", "not"):
            negate = self.accept("not") is not None
            self.expect("in")
            members, kind = self.literal_list()
            if left.type != kind:
                _fail(f"cannot look for a {left.type} in a list of {kind}s", token.pos)
            node = _binary(BOOL, operator.contains, _constant("list", members), left)
            if negate:
                fn = node.fn
                node = _Node(BOOL, lambda env: not fn(env))
        else:
            return left
        after = self.peek()
        if (after.kind == "op" and after.text in _COMPARE) or after.text == "in":
            _fail("comparisons do not chain: join them with 'and'", after.pos)
        return node

    def addition(self) -> _Node:
        node = self.multiplication()
        while (token := self.accept("+", "-")) is not None:
            right = self.multiplication()
            self.want(node, NUM, token, repr(token.text))
            self.want(right, NUM, token, repr(token.text))
            node = _binary(NUM, _ARITHMETIC[token.text], node, right)
        return node

    def multiplication(self) -> _Node:
        node = self.unary()
        while (token := self.accept("*", "/", "%")) is not None:
            right = self.unary()
            self.want(node, NUM, token, repr(token.text))
            self.want(right, NUM, token, repr(token.text))
            node = _binary(NUM, _ARITHMETIC[token.text], node, right)
        return node

    def unary(self) -> _Node:
        token = self.accept("-")
        if token is None:
            return self.primary()
        self.nested(token.pos)
        node = self.unary()
        self.depth -= 1
        self.want(node, NUM, token, "'-'")
        return _binary(NUM, operator.sub, _constant(NUM, 0), node)

    def primary(self) -> _Node:
        token = self.take()
        if token.kind == "number":
            return _constant(NUM, self.number(token))
        if token.kind == "string":
            return _constant(STR, self.string(token))
        if token.kind == "op" and token.text == "(":
            self.nested(token.pos)
            node = self.disjunction()
            self.expect(")")
            self.depth -= 1
            return node
        if token.kind == "name":
            if token.text in ("true", "false"):
                return _constant(BOOL, token.text == "true")
            if token.text in _KEYWORDS:
                _fail(f"unexpected {token.text!r}", token.pos)
            if self.peek().text == "(" and self.peek().kind == "op":
                return self.call(token)
            return self.name(token)
        _fail(f"unexpected {token.text!r}", token.pos)
        raise AssertionError  # unreachable: _fail raises

    def name(self, token: _Token) -> _Node:
        type_ = self.vocabulary.fields.get(token.text)
        if type_ is None:
            hint = " (an entity is named only inside a function)" if (
                token.text in self.vocabulary.entities
            ) else ""  # fmt: skip
            _fail(f"unknown name {token.text!r}{hint}", token.pos)
        self.fields.add(token.text)
        return _Node(type_, operator.itemgetter(token.text))

    @staticmethod
    def number(token: _Token) -> int | Fraction:
        text = token.text.replace("_", "")
        value: int | Fraction = Fraction(text) if "." in text else int(text)
        if value > MAX_NUMBER:
            _fail(f"numbers are at most {MAX_NUMBER}", token.pos)
        return value.numerator if isinstance(value, Fraction) and value.denominator == 1 else value

    @staticmethod
    def string(token: _Token) -> str:
        value = re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if len(value) > MAX_STRING:
            _fail(f"texts are at most {MAX_STRING} characters", token.pos)
        return value

    def literal_list(self) -> tuple[frozenset[Any], str]:
        start = self.expect("[")
        members: list[Any] = []
        kinds: set[str] = set()
        while True:
            token = self.take()
            negative = token.kind == "op" and token.text == "-"
            if negative:
                token = self.take()
            if token.kind == "number":
                members.append(-self.number(token) if negative else self.number(token))
                kinds.add(NUM)
            elif token.kind == "string" and not negative:
                members.append(self.string(token))
                kinds.add(STR)
            else:
                _fail("a list holds numbers or texts written out", token.pos)
            if len(members) > MAX_LIST:
                _fail(f"a list has at most {MAX_LIST} items", token.pos)
            if self.accept("]"):
                break
            self.expect(",")
        if len(kinds) > 1:
            _fail("a list holds numbers or texts, not both", start.pos)
        return frozenset(members), kinds.pop()

    # calls
    def arguments(self) -> list[tuple[_Token, _Node | None]]:
        """(token, node) per argument; node None for a bare entity name."""
        self.expect("(")
        args: list[tuple[_Token, _Node | None]] = []
        if self.accept(")"):
            return args
        while True:
            token = self.peek()
            if (
                token.kind == "name"
                and token.text in self.vocabulary.entities
                and (
                    self.tokens[self.at + 1].text in (",", ")")  # a name is never the last token
                )
            ):
                self.take()
                args.append((token, None))
            else:
                args.append((token, self.disjunction()))
            if len(args) > MAX_ARGS:
                _fail(f"a function takes at most {MAX_ARGS} arguments", token.pos)
            if self.accept(")"):
                return args
            self.expect(",")

    def call(self, name: _Token) -> _Node:
        self.nested(name.pos)
        args = self.arguments()
        self.depth -= 1
        handler = {
            "count": self.aggregate, "sum": self.aggregate, "distinct": self.aggregate,
            "on_list": self.on_list, "yuan": self.yuan, "min": self.extreme,
            "max": self.extreme, "abs": self.absolute,
        }.get(name.text)  # fmt: skip
        if handler is None:
            _fail(f"unknown function {name.text!r}", name.pos)
        return handler(name, args)  # type: ignore[misc]

    def numbers(self, name: _Token, args: list[tuple[_Token, _Node | None]]) -> list[_Node]:
        nodes = []
        for token, node in args:
            if node is None or node.type != NUM:
                _fail(f"{name.text}() takes numbers", token.pos)
            nodes.append(node)
        return nodes

    def yuan(self, name: _Token, args: list[tuple[_Token, _Node | None]]) -> _Node:
        """yuan(n): n yuan in fen, so that rules read like the bank's own rules."""
        nodes = self.numbers(name, args)
        if len(nodes) != 1:
            _fail("yuan() takes one number", name.pos)
        return _binary(NUM, operator.mul, nodes[0], _constant(NUM, 100))

    def extreme(self, name: _Token, args: list[tuple[_Token, _Node | None]]) -> _Node:
        nodes = self.numbers(name, args)
        if len(nodes) < 2:
            _fail(f"{name.text}() takes two or more numbers", name.pos)
        pick = min if name.text == "min" else max
        node = nodes[0]
        for other in nodes[1:]:
            node = _binary(NUM, lambda a, b: pick(a, b), node, other)
        return node

    def absolute(self, name: _Token, args: list[tuple[_Token, _Node | None]]) -> _Node:
        nodes = self.numbers(name, args)
        if len(nodes) != 1:
            _fail("abs() takes one number", name.pos)
        return _binary(NUM, lambda a, _: abs(a), nodes[0], _constant(NUM, 0))

    def literal(self, token: _Token, node: _Node | None, what: str) -> str:
        if node is None or node.type != STR or not node.constant:
            _fail(f"{what} is a text in quotes", token.pos)
        return str(node.value)

    def entity(self, token: _Token, node: _Node | None) -> str:
        if node is not None:
            names = ", ".join(sorted(self.vocabulary.entities))
            _fail(f"expected an entity ({names})", token.pos)
        return self.vocabulary.entities[token.text]

    def aggregate(self, name: _Token, args: list[tuple[_Token, _Node | None]]) -> _Node:
        """count/sum/distinct(entity, "metric", "window")."""
        if len(args) != 3:
            _fail(f'{name.text}() takes an entity, a "metric" and a "window"', name.pos)
        entity = self.entity(*args[0])
        metric = self.literal(*args[1], "the metric")
        allowed = self.vocabulary.distinct if name.text == "distinct" else self.vocabulary.summed
        if metric not in allowed.get(entity, frozenset()):
            known = ", ".join(sorted(allowed.get(entity, frozenset()))) or "none"
            _fail(f"{name.text}() of {entity} has no metric {metric!r} (known: {known})",
                  args[1][0].pos)  # fmt: skip
        window_text = self.literal(*args[2], "the window")
        window = self.vocabulary.window(window_text)
        if window is None:
            _fail(f"no such window {window_text!r}", args[2][0].pos)
        label = f'{name.text}({args[0][0].text},"{metric}","{window_text}")'
        key = Aggregate(name.text, entity, metric, window, label)  # type: ignore[arg-type]
        self.aggregates.add(key)
        return _Node(NUM, operator.itemgetter(key.key))

    def on_list(self, name: _Token, args: list[tuple[_Token, _Node | None]]) -> _Node:
        """on_list("list", entity): whether the entity's key is on that watch list."""
        if len(args) != 2:
            _fail('on_list() takes a "list" and an entity', name.pos)
        listed = self.literal(*args[0], "the list")
        if listed not in self.vocabulary.lists:
            _fail(f"no watch list {listed!r}", args[0][0].pos)
        entity = self.entity(*args[1])
        key = ListCheck(listed, entity, f'on_list("{listed}",{args[1][0].text})')
        self.lists.add(key)
        return _Node(BOOL, operator.itemgetter(key.key))
