"""A scenario's assertions: ``KPI OP NUMBER`` lines, parsed and judged against the KPIs. Pure."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ASSERTION = re.compile(
    r"^\s*([a-z_0-9]+)\s*(<=|>=|==|<|>)\s*(-?[0-9]+(?:\.[0-9]*)?(?:e-?[0-9]+)?)\s*$"
)

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True, slots=True)
class Assertion:
    """``kpi op value``, e.g. ``utilization >= 0.85``."""

    text: str
    kpi: str
    op: str
    value: float


@dataclass(frozen=True, slots=True)
class AssertionResult:
    """One assertion and what the run measured; ``actual`` is None when the KPI is missing."""

    text: str
    kpi: str
    actual: float | None
    passed: bool


def parse_assertion(text: str) -> Assertion:
    """Parse one line; ValueError says what is wrong with it."""
    match = ASSERTION.match(text)
    if match is None:
        raise ValueError(f"{text!r}: write KPI OP NUMBER, with OP one of <= >= == < >")
    return Assertion(text.strip(), match[1], match[2], float(match[3]))


def judge(assertions: Sequence[str], kpis: Mapping[str, Any]) -> list[AssertionResult]:
    """Each assertion against the KPIs; a missing or non-numeric KPI fails."""
    results = []
    for text in assertions:
        a = parse_assertion(text)
        actual = kpis.get(a.kpi)
        if not isinstance(actual, int | float):
            results.append(AssertionResult(a.text, a.kpi, None, False))
            continue
        passed = _OPS[a.op](float(actual), a.value)
        results.append(AssertionResult(a.text, a.kpi, float(actual), passed))
    return results
