"""RFC 8785 (JCS) canonical JSON, fast where it can be.

For values made of strings, booleans, null, I-JSON integers, non-integral
floats of magnitude in [1e-4, 1e16), lists and objects whose keys sort the same
in UTF-16 and code-point order, RFC 8785 output is exactly orjson's compact
sorted-key output (same escapes; such a float is its shortest round-trip
digits in plain decimal notation in both), which is some 30 times faster than
the pure-Python encoder. Anything else (other floats, which JCS writes in
ECMAScript's notation, out-of-range integers, astral keys, lone surrogates)
goes to `rfc8785`, whose errors (`rfc8785.CanonicalizationError`) are the
caller's to handle. The two are compared on generated values by the tests.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

_I_JSON_MAX = 2**53 - 1


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value; rfc8785.CanonicalizationError where it has none."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:           # e.g. a lone surrogate: let rfc8785 say what is wrong
            pass
    return rfc8785.dumps(value)


_LEAVES = (str, bool, type(None))


def _plain(value: Any) -> bool:
    """Whether orjson's sorted compact output is the value's RFC 8785 form (see the module's docstring).
    Strings, booleans and nulls among a container's children are passed over where they are met: they are
    most of what is walked."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, child in item.items():
                if type(key) is not str or not (key.isascii() or max(key) < "\ud800"):
                    return False
                if type(child) not in _LEAVES:
                    stack.append(child)
            continue
        if kind is list or kind is tuple:
            stack.extend(child for child in item if type(child) not in _LEAVES)
            continue
        if kind in _LEAVES:
            continue
        if kind is int:
            if -_I_JSON_MAX <= item <= _I_JSON_MAX:
                continue
            return False
        if kind is float:
            if 1e-4 <= abs(item) < 1e16 and not item.is_integer():    # NaN and ±Infinity fail the range
                continue
            return False
        return False
    return True
