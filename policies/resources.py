"""Resource patterns: which key-broker resources a policy governs.

A resource is a path of one or more segments separated by "/", each made of
letters, digits, ".", "_" and "-" (no empty segment, no "." or ".."), e.g.
`models/llama-70b/dek`. A pattern is the same with wildcards:

* a segment `**` matches zero or more whole segments;
* any other `*` matches zero or more characters inside one segment (never "/").

Nothing else is special: no `?`, no character classes, no regular
expressions, so a pattern cannot be made to match in surprising ways.
Matching is exact and case-sensitive.
"""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_PATTERN_SEGMENT = re.compile(r"[A-Za-z0-9._*-]+")
MAX_LENGTH = 256


def check_resource(path: str) -> str:
    """Return `path` when it is a well-formed resource path; raise ValueError otherwise."""
    _check(path, _SEGMENT, "resource")
    return path


def check_pattern(pattern: str) -> str:
    """Return `pattern` when it is a well-formed resource pattern; raise ValueError otherwise."""
    _check(pattern, _PATTERN_SEGMENT, "resource pattern")
    for segment in pattern.split("/"):
        if "**" in segment and segment != "**":
            raise ValueError(f"`**` must be a whole segment, not part of {segment!r}")
    return pattern


def _check(text: str, segment_rule: re.Pattern, what: str) -> None:
    if not isinstance(text, str) or not text or len(text) > MAX_LENGTH:
        raise ValueError(f"a {what} is a non-empty string of at most {MAX_LENGTH} characters")
    for segment in text.split("/"):
        if not segment_rule.fullmatch(segment) or segment in (".", ".."):
            raise ValueError(f"{what} {text!r}: bad segment {segment!r} (letters, digits, '.', '_', '-'"
                             f"{', *' if segment_rule is _PATTERN_SEGMENT else ''}; no empty, '.' or '..')")


def matches(pattern: str, resource: str) -> bool:
    """Whether `resource` matches `pattern` (both already checked)."""
    return _match_segments(pattern.split("/"), resource.split("/"))


def _match_segments(pats: list[str], parts: list[str]) -> bool:
    if not pats:
        return not parts
    head, rest = pats[0], pats[1:]
    if head == "**":
        return any(_match_segments(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and _match_segment(head, parts[0]) and _match_segments(rest, parts[1:])


def _match_segment(pattern: str, text: str) -> bool:
    """`*` matches any run of characters; everything else matches itself."""
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return pattern == text
    first, last, middle = pieces[0], pieces[-1], pieces[1:-1]
    if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for piece in middle:                      # leftmost placement of each piece is always safe
        found = text.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True
