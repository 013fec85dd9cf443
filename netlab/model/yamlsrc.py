"""YAML documents as plain Python values, with the line of every field kept aside.

Each document becomes (value, lines) where `lines` maps a field path such as
``spec.nodes[1].name`` to its 1-based line, so errors can point at the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from ..errors import Problem


@dataclass
class Document:
    file: str
    index: int
    value: object
    lines: dict[str, int] = field(default_factory=dict)
    line: int = 1

    def line_of(self, path: str) -> int:
        """The line of `path`, or of its nearest parent that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.line


def join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _convert(node: yaml.Node, path: str, lines: dict[str, int]) -> object:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[object, object] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_object(_CONSTRUCTOR, key_node)  # type: ignore[arg-type]
            if isinstance(key, (dict, list)):
                key = str(key)
            child = join(path, key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, join(path, i), lines) for i, item in enumerate(node.value)]
    return _CONSTRUCTOR.construct_object(node, deep=True)


class _Constructor(yaml.SafeLoader):
    def __init__(self) -> None:  # no stream: only the constructors are used
        yaml.constructor.SafeConstructor.__init__(self)


_CONSTRUCTOR = _Constructor()


def load_documents(text: str, file: str) -> tuple[list[Document], list[Problem]]:
    """Parse every document in `text`; a syntax error becomes a Problem with its line."""
    docs: list[Document] = []
    try:
        for index, node in enumerate(yaml.compose_all(text, Loader=yaml.SafeLoader)):
            if node is None:
                continue
            lines: dict[str, int] = {}
            value = _convert(node, "", lines)
            docs.append(Document(file, index, value, lines, node.start_mark.line + 1))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        what = err.problem or str(err)
        if err.context:
            what = f"{err.context}, {what}"
        return docs, [Problem(file, line, "", f"YAML syntax error: {what}",
                              "fix the YAML syntax at that line")]
    except yaml.YAMLError as err:
        return docs, [Problem(file, None, "", f"YAML error: {err}")]
    except (ValueError, TypeError, RecursionError) as err:
        return docs, [Problem(file, None, "", f"YAML value error: {err}")]
    return docs, []
