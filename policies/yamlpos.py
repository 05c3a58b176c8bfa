"""YAML (and JSON) to plain Python values, remembering where every value came from.

PyYAML's `compose()` gives nodes with start marks; we build the values
ourselves so that every key and list item gets a (line, column), duplicate
keys are errors (PyYAML would keep the last one silently), and only the
plain scalar types of the YAML core schema can appear (no tags, no objects).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass
class Located:
    """A document's data and the position (1-based line, column) of each path in it."""

    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    scalars: dict[Path, tuple[int, int, str | None]] = field(default_factory=dict)   # value start and style
    lines: tuple[str, ...] = ()

    def position(self, loc: tuple) -> tuple[int, int, Path]:
        """The position of the deepest part of `loc` present in the data, and that path.

        Parts that do not navigate the data (pydantic's union tags, a missing
        key) are skipped, so a "field required" error points at its parent.
        """
        path: Path = ()
        node = self.data
        for part in loc:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node, path = node[part], path + (part,)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node, path = node[part], path + (part,)
        line, column = self.positions.get(path, (1, 1))
        return line, column, path


class YamlProblem(ValueError):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def load_located(text: str) -> Located:
    """Parse one YAML/JSON document; raise YamlProblem with a position when it is not plain data."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlProblem(line, col, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, 1, f"not valid YAML: {exc}") from None
    if node is None:
        raise YamlProblem(1, 1, "the document is empty")
    located = Located(data=None, lines=tuple(text.splitlines()))
    located.data = _build(node, (), located.positions)
    _record_scalars(node, (), located.scalars)
    return located


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(node: yaml.Node, path: Path, positions: dict) -> Any:
    positions[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(node, path, positions)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), positions) for i, item in enumerate(node.value)]
    return _scalar(node)


def _build_mapping(node: yaml.MappingNode, path: Path, positions: dict) -> dict:
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            raise YamlProblem(*_mark(key_node), "mapping keys must be plain strings")
        if key in out:
            raise YamlProblem(*_mark(key_node), f"duplicate key {key!r}")
        out[key] = _build(value_node, path + (key,), positions)
        positions[path + (key,)] = _mark(key_node)   # errors about a field point at its key
    return out


_SCALARS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp"}


def _record_scalars(node: yaml.Node, path: Path, out: dict) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _record_scalars(value_node, path + (key_node.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_scalars(item, path + (i,), out)
    else:
        out[path] = (*_mark(node), node.style)


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode) or node.tag not in _SCALARS:
        raise YamlProblem(*_mark(node), f"unsupported YAML value (tag {node.tag})")
    try:
        return _CONSTRUCTOR.construct_object(node)
    except (ValueError, OverflowError) as exc:     # e.g. a timestamp with month 13
        raise YamlProblem(*_mark(node), f"invalid {node.tag.rsplit(':', 1)[-1]} value ({exc})") from None
