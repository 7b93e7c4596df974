"""CEL for admission (upstream k8s.io/apiserver/pkg/admission/plugin/cel): compile once when a
policy or webhook configuration is written, evaluate per request.

The `cel` module (common-expression-language, cel-rust underneath) parses and evaluates; it does
not type-check, so the one static check upstream's checker makes that matters most here, a
reference to a variable the environment does not declare, is made from the program's references.
Errors read as cel-go's: `ERROR: <input>:L:C: <text>` with the source line and a caret below.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import cel

# The variables every admission expression may use; `params` and `variables` only where declared.
BASE_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject", "authorizer"})
_PARSE_PREFIX = re.compile(r"^Failed to parse expression '.*?': ", re.S)
# Macros bind their iteration variable, which the binding reports among the program's variables.
_MACRO_VARS = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")


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


def compile_expression(expression: str, declared: Iterable[str]) -> cel.Program:
    """The compiled program, or CELCompileError with cel-go's wording."""
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as e:
        text = _PARSE_PREFIX.sub("", str(e)).replace("\n| ", "\n | ")
        raise CELCompileError(f"compilation failed: {text}") from None
    known = set(declared) | set(_MACRO_VARS.findall(expression))
    problems = []
    for name in program.variables():
        if name not in known:
            m = re.search(rf"(?<![\w.]){re.escape(name)}\b", expression)
            where, caret = _caret(expression, m.start() if m else 0)
            problems.append(f"ERROR: {where}: undeclared reference to '{name}' (in container ''){caret}")
    if problems:
        raise CELCompileError("compilation failed: " + "\n".join(problems))
    return program


def evaluate(program: cel.Program, activation: Mapping[str, Any]) -> Any:
    try:
        return program.execute(dict(activation))
    except Exception as e:  # the binding raises KeyError/TypeError/ValueError/RuntimeError/ZeroDivisionError
        if isinstance(e, KeyError):
            raise CELRuntimeError(f"no such key: {e.args[0]}") from None
        raise CELRuntimeError(str(e)) from None
