"""Asking several collateral sources in turn (ChainedCollateral, ChainedNvidia)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from ..errors import CollateralError

S = TypeVar("S")
T = TypeVar("T")


def first_answer(sources: Iterable[S], call: Callable[[S], T], what: str) -> T:
    """`call(source)` for the first source that has the item. If none has it, the last source's
    CollateralError is raised: the last source tried (the broadest) explains best."""
    error: CollateralError | None = None
    for source in sources:
        try:
            return call(source)
        except CollateralError as exc:
            error = exc
    raise error or CollateralError(what, "no source configured")
