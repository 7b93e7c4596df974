"""CEL for admission (upstream k8s.io/apiserver/pkg/admission/plugin/cel): compile once when a
policy or webhook configuration is written, evaluate per request.

The `cel` module (common-expression-language, cel-rust underneath) parses and evaluates; it does
not type-check, so the static check upstream's checker makes that matters most here, a reference
to a variable or function the environment does not declare, is made from the program's references.
Errors read as cel-go's: `ERROR: <input>:L:C: <text>` with the source line and a caret below.

Programs run in one shared cel.Context holding the function libraries (cel_library); its variables
come from the activation of the evaluation under way, which a ContextVar holds. The authorizer
library is synchronous inside CEL while kubegate's authorizers are async, so an evaluation that
reaches a check whose answer is not known stops, the checks it reached are put to the authorizer,
and the (pure) expression runs again with the answers: `evaluate_async`.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

import cel

from kubegate.admission import cel_library as lib
from kubegate.authn.user import SERVICE_ACCOUNT_GROUP, UserInfo, service_account_username
from kubegate.authz.types import Attributes, Authorizer, AuthzResult, Decision

# The variables every admission expression may use; `params` and `variables` only where declared.
BASE_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject", "authorizer"})
_PARSE_PREFIX = re.compile(r"^Failed to parse expression '.*?': ", re.S)
# Macros bind their iteration variable, which the binding reports among the program's variables.
_MACRO_VARS = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")
# Functions cel-rust implements itself (the CEL standard definitions upstream's base env has too).
NATIVE_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string", "bytes",
    "timestamp", "duration", "type", "dyn", "getFullYear", "getMonth", "getDate", "getDayOfMonth",
    "getDayOfWeek", "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    "of", "none", "ofNonZeroValue", "hasValue", "value", "or", "orValue",
})
_OPTIONAL_FUNCTIONS = frozenset({"of", "none", "ofNonZeroValue"})
# Type names are identifiers in CEL (`type(x) == int`).
_TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "type", "null_type"})
FUNCTIONS = NATIVE_FUNCTIONS | {name.rpartition(".")[2] for name in lib.FUNCTIONS}
# Namespaced functions (`sets.contains`, `ip.isCanonical`, `optional.of`) parse as a call on an identifier.
_NAMESPACES: dict[str, frozenset[str]] = {"optional": _OPTIONAL_FUNCTIONS}
for _qualified in lib.FUNCTIONS:
    if "." in _qualified:
        _ns, _, _fn = _qualified.rpartition(".")
        _NAMESPACES[_ns] = _NAMESPACES.get(_ns, frozenset()) | {_fn}
_CALL_PREFIX = re.compile(r"Function '[^']*' error: Python function call failed: (\w+): (.*)\. "
                          r"Check function arguments and their types\.$", re.S)
_LIBRARY_ERRORS = {cls.__name__ for cls in (lib.CELError, lib.NoSuchOverload, lib.AuthorizationPending)}



class _QuietLibraryErrors(logging.Filter):
    """The binding logs every exception a Python function raises; the library's are CEL errors the
    caller reports (and AuthorizationPending is routine), so they are not logged twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(f": {name}: " in record.getMessage() for name in _LIBRARY_ERRORS)


logging.getLogger("cel").addFilter(_QuietLibraryErrors())

_ACTIVATION: ContextVar[Mapping[str, Any]] = ContextVar("kubegate_cel_activation", default={})
_CONTEXT = cel.Context(None, dict(lib.FUNCTIONS))
_CONTEXT.set_variable_resolver(lambda name: _ACTIVATION.get().get(name))
for _name in BASE_VARIABLES | {"params", "variables"}:
    # The resolver answers None for an absent or null value; these make null the answer.
    _CONTEXT.add_variable(_name, None)


def policy_variables(policy: Mapping[str, Any]) -> set[str]:
    """The variables a ValidatingAdmissionPolicy's expressions may use: params only with a paramKind."""
    spec = policy.get("spec")
    names = set(BASE_VARIABLES) | {"variables"}
    if isinstance(spec, dict) and spec.get("paramKind"):
        names.add("params")
    return names


class CELCompileError(ValueError):
    """The expression does not compile; str() is upstream's `compilation failed: ...` detail."""


class CELRuntimeError(RuntimeError):
    """The expression failed while evaluating (a missing field, no such overload, division by zero)."""


def _caret(expression: str, offset: int) -> tuple[str, str]:
    line_no = expression.count("\n", 0, offset) + 1
    start = expression.rfind("\n", 0, offset) + 1
    end = expression.find("\n", offset)
    line = expression[start:] if end < 0 else expression[start:end]
    col = offset - start
    return f"<input>:{line_no}:{col + 1}", f"\n | {line}\n | {'.' * col}^"


def _namespace_used(expression: str, name: str) -> bool:
    """`name` is a namespace that the expression calls one of its functions through."""
    functions = _NAMESPACES.get(name, frozenset())
    return any(m.group(1) in functions for m in
               re.finditer(rf"(?<![\w.]){re.escape(name)}\s*\.\s*(\w+)\s*\(", expression))


def compile_expression(expression: str, declared: Iterable[str]) -> cel.Program:
    """The compiled program, or CELCompileError with cel-go's wording."""
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as e:
        text = _PARSE_PREFIX.sub("", str(e)).replace("\n| ", "\n | ")
        raise CELCompileError(f"compilation failed: {text}") from None
    known = set(declared) | set(_MACRO_VARS.findall(expression)) | _TYPE_NAMES
    references = program.references()
    problems: list[tuple[int, str]] = []
    for name in references["variables"]:
        if name not in known and not _namespace_used(expression, name):
            m = re.search(rf"(?<![\w.]){re.escape(name)}\b", expression)
            problems.append((m.start() if m else 0, name))
    for name in references["functions"]:
        if name[:1].isalpha() and name not in FUNCTIONS:
            # cel-go places a call at its opening parenthesis.
            m = re.search(rf"(?<!\w){re.escape(name)}\s*(\()", expression)
            problems.append((m.start(1) if m else 0, name))
    if problems:
        lines = []
        for offset, name in sorted(problems):
            where, caret = _caret(expression, offset)
            lines.append(f"ERROR: {where}: undeclared reference to '{name}' (in container ''){caret}")
        raise CELCompileError("compilation failed: " + "\n".join(lines))
    return program


def _runtime_error(e: Exception) -> CELRuntimeError:
    """cel-go's wording for a failure: `no such key: x`, `no such overload`, or the library's text."""
    if isinstance(e, KeyError):
        return CELRuntimeError(f"no such key: {e.args[0]}")
    text = str(e)
    m = _CALL_PREFIX.match(text)
    if m:
        kind, message = m.group(1), m.group(2)
        if kind in _LIBRARY_ERRORS:
            return CELRuntimeError(message)
        return CELRuntimeError("no such overload" if kind == "TypeError" else message)
    if isinstance(e, TypeError) and text.startswith("No such overload"):
        return CELRuntimeError("no such overload")
    return CELRuntimeError(text)


def _run(program: cel.Program, activation: Mapping[str, Any]) -> Any:
    token = _ACTIVATION.set(activation)
    try:
        return program.execute(_CONTEXT)
    except Exception as e:  # the binding raises KeyError/TypeError/ValueError/RuntimeError/ZeroDivisionError
        raise _runtime_error(e) from None
    finally:
        _ACTIVATION.reset(token)


def evaluate(program: cel.Program, activation: Mapping[str, Any]) -> Any:
    """Evaluate without an authorizer: an authorizer check fails."""
    return _run(program, activation)


class AuthorizerSession:
    """The authorizer checks of one admission request, asked as the requesting user (or the service
    account an expression names) and remembered for every expression of the request."""

    def __init__(self, authorizer: Authorizer, user: UserInfo) -> None:
        self.authorizer = authorizer
        self.user = user
        self.decisions: dict[lib.AccessCheck, AuthzResult] = {}
        self.pending: set[lib.AccessCheck] = set()

    def decide(self, check: lib.AccessCheck) -> AuthzResult:
        got = self.decisions.get(check)
        if got is None:
            self.pending.add(check)
            raise lib.AuthorizationPending("authorization check pending")
        return got

    def attributes(self, check: lib.AccessCheck) -> Attributes:
        user = self.user
        if check.service_account is not None:
            ns, name = check.service_account
            user = UserInfo(service_account_username(ns, name),
                            groups=(SERVICE_ACCOUNT_GROUP, f"{SERVICE_ACCOUNT_GROUP}:{ns}"))
        if check.resource:
            return Attributes(user=user, verb=check.verb, namespace=check.namespace, api_group=check.group,
                              api_version="*", resource=check.resource, subresource=check.subresource,
                              name=check.name, resource_request=True, field_selector=check.field_selector,
                              label_selector=check.label_selector)
        return Attributes(user=user, verb=check.verb, path=check.path)

    async def resolve(self) -> None:
        for check in sorted(self.pending, key=repr):
            try:
                self.decisions[check] = await self.authorizer.authorize(self.attributes(check))
            except Exception as e:  # an authorizer failing is the decision's error(), as upstream's err
                self.decisions[check] = AuthzResult(Decision.NO_OPINION, "", str(e))
        self.pending.clear()


async def evaluate_async(program: cel.Program, activation: Mapping[str, Any],
                         session: AuthorizerSession | None) -> Any:
    """Evaluate with the authorizer library answering from `session`: run, and while the run failed
    for want of decisions, get them and run again (each round answers at least one more check)."""
    if session is None:
        return _run(program, activation)
    token = lib.DECIDER.set(session.decide)
    try:
        while True:
            try:
                return _run(program, activation)
            except CELRuntimeError:
                if not session.pending:
                    raise
                await session.resolve()
    finally:
        lib.DECIDER.reset(token)
