"""Generic rules: allow-lists (with reference values), flags, floors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from ..decision import CheckResult
from ..schema import AllowList
from ..schema.documents import ReferenceSet


@dataclass(frozen=True, slots=True)
class Context:
    """What every check may read besides the claims: the time and the resolved reference sets."""

    at: datetime
    references: dict[str, ReferenceSet]
    resource: str | None = None


def describe(rule: AllowList) -> str:
    if rule.any:
        return "any"
    parts = [str(v) for v in rule.values] + [f"ref:{r}" for r in rule.refs]
    return ("one of " if len(parts) > 1 else "") + ", ".join(parts)


def allowed(code: str, rule: AllowList, actual: Any, ctx: Context, *, explicit: bool, default: str = "") -> CheckResult:
    """`actual` is accepted by `rule`; `explicit` says whether the policy wrote the rule (else its default)."""
    origin = "" if explicit else f" (default: {default})" if default else " (default)"
    shown = str(actual)
    if rule.any:
        why = "waived: the policy says `any`" if explicit else f"not pinned{origin}"
        return CheckResult(code, True, "any" + origin, shown, why, waived=True)
    if actual in rule.values:
        return CheckResult(code, True, describe(rule) + origin, shown, "in the policy's list")
    expired = []
    for name in rule.refs:
        for entry in ctx.references[name].values:
            if entry.value != actual:
                continue
            if not entry.expired(ctx.at):
                return CheckResult(code, True, describe(rule) + origin, shown,
                                   f"in reference set {name!r} (source {entry.source}"
                                   f"{', build ' + entry.build_id if entry.build_id else ''})")
            expired.append(f"{name!r} (build {entry.build_id or '-'}, expired {entry.expires.isoformat()})")
    if expired:
        return CheckResult(code, False, describe(rule) + origin, shown,
                           "matches only expired reference values: " + "; ".join(expired))
    return CheckResult(code, False, describe(rule) + origin, shown, "not an accepted value")


def flag(code: str, rule: str, actual: bool) -> CheckResult:
    """A tri-state flag rule: required / allowed / forbidden."""
    shown = "set" if actual else "clear"
    if rule == "allowed":
        return CheckResult(code, True, "set or clear", shown, "allowed either way", waived=True)
    want = rule == "required"
    return CheckResult(code, actual == want, "set" if want else "clear", shown,
                       f"{rule} by policy" if actual == want else f"must be {'set' if want else 'clear'}")


def floor(code: str, minimum: Iterable[int] | None, actual: Iterable[int], labels: Iterable[str] = ()) -> CheckResult:
    """Component-wise `actual >= minimum`; None means no floor (a visible, waived check)."""
    act = tuple(actual)
    shown = _components(act, labels)
    if minimum is None:
        return CheckResult(code, True, "any (no floor in policy; tcb_status governs)", shown, "no floor", waived=True)
    want = tuple(minimum)
    if not any(want):
        return CheckResult(code, True, ">= " + _components(want, labels), shown, "a zero floor accepts any value",
                           waived=True)
    low = [i for i, (a, m) in enumerate(zip(act, want)) if a < m]
    names = list(labels) or [str(i) for i in range(len(want))]
    return CheckResult(code, not low and len(act) >= len(want), ">= " + _components(want, labels), shown,
                       "at or above the floor" if not low else "below the floor in " + ", ".join(names[i] for i in low))


def _components(values: tuple[int, ...], labels: Iterable[str]) -> str:
    names = list(labels)
    if names:
        return " ".join(f"{n}={v}" for n, v in zip(names, values))
    return ".".join(str(v) for v in values)


def version_tuple(text: str) -> tuple[int, ...]:
    """"550.90.07" -> (550, 90, 7); non-numeric parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in text.split("."))


def version_floor(code: str, minimum: str | None, actual: str) -> CheckResult:
    """Dotted version `actual >= minimum`, compared as a tuple (lexicographically)."""
    if minimum is None:
        return CheckResult(code, True, "any (no minimum in policy)", actual, "no minimum", waived=True)
    ok = version_tuple(actual) >= version_tuple(minimum)
    return CheckResult(code, ok, f">= {minimum}", actual, "at or above the minimum" if ok else "below the minimum")
