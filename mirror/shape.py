"""The shape of the JSON files this tool reads back (bundle.json, receipts, inventories), checked before use,
so that a hand-edited or garbled file is one error line naming the field, not a traceback.

Why hand-written: three small, fixed shapes do not warrant a schema library among the runtime dependencies.
A shape is a type (str, int, bool; `object` for anything), a tuple of alternatives (`(str, None)`), `[shape]`
for a list, `{"key": shape, "optional?": shape}` for an object (other keys allowed), or `{str: shape}` for an
object used as a map.
"""

from __future__ import annotations

from typing import Any

from .errors import MirrorError, UsageError

_NAMES = {str: "a string", int: "a number", bool: "true or false", dict: "an object", list: "a list"}


def problem(value: Any, shape: Any, where: str = "") -> str | None:
    """What about `value` does not fit `shape` (the first thing found), or None."""
    name = where or "the top level"
    if shape is object:
        return None
    if shape is None:
        return None if value is None else f"{name} is not null"
    if isinstance(shape, tuple):
        found = [problem(value, s, where) for s in shape]
        return None if None in found else found[0]
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{name} is not a list"
        return next((p for i, v in enumerate(value) if (p := problem(v, shape[0], f"{where}[{i}]"))), None)
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{name} is not an object"
        if str in shape:
            return next((p for k, v in value.items() if (p := problem(v, shape[str], _join(where, k)))), None)
        for key, sub in shape.items():
            key, optional = key.rstrip("?"), key.endswith("?")
            if key not in value:
                if optional:
                    continue
                return f"{_join(where, key)} is missing"
            if (p := problem(value[key], sub, _join(where, key))):
                return p
        return None
    fits = isinstance(value, shape) and not (shape is int and isinstance(value, bool))
    return None if fits else f"{name} is not {_NAMES.get(shape, shape.__name__)}"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def require(value: Any, shape: Any, *, what: str, where: str, hint: str,
            error: type[MirrorError] = UsageError) -> None:
    """Raise `error` ("<what> is damaged: <the first problem>") when `value` does not fit `shape`."""
    bad = problem(value, shape)
    if bad:
        raise error(f"{what} is damaged: {bad}", where=where, hint=hint)
