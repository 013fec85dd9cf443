"""YAML documents as plain Python values, with the line of every field kept aside.

Each document becomes (value, lines) where `lines` maps a field path such as
``spec.nodes[1].name`` to its 1-based line, so errors can point at the file.

A lab file may come from anyone and netlab runs as root, so reading it is bounded: aliases may
not multiply the work without limit, nesting is capped, and a key given twice is an error rather
than a silent last-wins.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.reader import ReaderError

from ..errors import Problem

# libyaml's C parser and composer (in every PyYAML wheel) are ~10× faster than the pure-Python
# ones, and their nodes carry the same start marks, so lines are kept either way.
FAST_LOADER = getattr(yaml, "CSafeLoader", None)

if FAST_LOADER is not None:
    class _CachingLoader(FAST_LOADER):  # type: ignore[misc, valid-type]
        """libyaml's loader resolving each distinct scalar once: a lab repeats most of its values.

        Only used while no path resolver is registered, which makes a tag depend on the value alone.
        """

        def __init__(self, stream: str):
            super().__init__(stream)
            self.tags: dict[tuple, str] = {}

        def resolve(self, kind: type, value: object, implicit: tuple[bool, bool]) -> str:
            key = (kind, value, implicit)
            tag = self.tags.get(key)
            if tag is None:
                tag = self.tags[key] = super().resolve(kind, value, implicit)
            return tag

        def descend_resolver(self, current_node: object, current_index: object) -> None:
            pass   # path resolvers only

        def ascend_resolver(self) -> None:
            pass

# Kubernetes objects nest about ten levels; 100 is far beyond any lab and far below Python's
# recursion limit, and it also stops an alias that contains itself (`a: &a [*a]`).
MAX_DEPTH = 100

# Aliases point at one node from many places, so a few hundred bytes can stand for billions of
# nodes. Converting every visit of a node (repeats included) is bounded by
# max(ALIAS_FLOOR, ALIAS_RATIO × the nodes written in the file): the floor (≈ 0.1 s of work)
# leaves small labs free to use anchors as they like, the ratio lets a big file reuse templates
# heavily, and the work stays linear in the size of the file either way.
ALIAS_FLOOR = 100_000
ALIAS_RATIO = 20

# Every field's path is kept, so a long key repeated in the path of each field below it would
# multiply memory by its length. Kubernetes keys are at most 317 characters (annotation keys).
MAX_PATH = 1000

_STR_TAG = "tag:yaml.org,2002:str"


@dataclass
class Document:
    """One YAML document of a file: its value, the line of each field path, and the line it starts on."""

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


class _Stop(Exception):
    """Converting must stop here; `problem` says why."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


class _SkipDocument(_Stop):
    """One document nests too deeply or its paths grow too long: the rest of the file can still be read."""


class _AliasBomb(_Stop):
    """The file's alias budget is spent: nothing more of it is converted."""


class _Converter:
    """Turns one file's composed nodes into values and lines, collecting every problem on the way."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems
        self.constructor = SafeConstructor()   # per file: it caches what it built, by node
        self.visits = 0        # nodes converted, each repeat through an alias counted again
        self.written = 0       # distinct nodes of the documents done so far
        self.seen: set[Node] = set()   # nodes hash by identity

    def document(self, root: Node, index: int) -> Document | None:
        lines: dict[str, int] = {}
        try:
            value = self.value(root, "", lines, 0)
        except _SkipDocument as stop:
            self.problems.append(stop.problem)
            return None
        finally:
            self.written += len(self.seen)
            self.seen = set()   # per document: only its own nodes can be repeated through its aliases
        return Document(self.file, index, value, lines, root.start_mark.line + 1)

    def value(self, node: Node, path: str, lines: dict[str, int], depth: int) -> object:
        line = node.start_mark.line + 1
        lines[path] = line
        self.visits += 1
        if node in self.seen:
            self.check_budget(path, line)
        else:
            self.seen.add(node)
        if isinstance(node, ScalarNode):
            if node.tag == _STR_TAG:   # most of a lab file: skip the constructor's dispatch
                return node.value
            built = self.scalar(node, path)
            return None if built is _UNBUILT else built
        if depth >= MAX_DEPTH:
            raise _SkipDocument(Problem(self.file, line, _short(path), f"YAML nests more than {MAX_DEPTH} levels deep "
                                   "(or an alias contains itself)", "flatten the document"))
        if isinstance(node, MappingNode):
            return self.mapping(node, path, lines, depth + 1)
        return [self.value(item, join(path, i), lines, depth + 1) for i, item in enumerate(node.value)]

    def check_budget(self, path: str, line: int) -> None:
        """A node seen before is being expanded again through an alias: is there budget left?"""
        written = self.written + len(self.seen)
        limit = max(ALIAS_FLOOR, ALIAS_RATIO * written)
        if self.visits > limit:
            raise _AliasBomb(Problem(
                self.file, line, _short(path),
                f"YAML aliases expand to more than {limit:,} nodes (an alias bomb?); the file itself has {written:,}",
                "use fewer aliases or write the repeated parts out"))

    def mapping(self, node: MappingNode, path: str, lines: dict[str, int], depth: int) -> dict:
        out: dict[object, object] = {}
        key_lines: dict[object, int] = {}   # not `lines`: another path may have overwritten a key's line
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key is _UNBUILT:
                continue
            child = join(path, key)
            key_line = key_node.start_mark.line + 1
            if len(child) > MAX_PATH:
                raise _SkipDocument(Problem(self.file, key_line, _short(child), f"a field path longer than "
                                            f"{MAX_PATH} characters", "use shorter keys"))
            if key in key_lines:
                self.problems.append(Problem(self.file, key_line, child,
                                             f"duplicate key (first at line {key_lines[key]})", "give each key once"))
                self.value(value_node, child, {}, depth)   # its own problems are still reported
                continue
            key_lines[key] = key_line
            lines[child] = key_line
            out[key] = self.value(value_node, child, lines, depth)
            lines[child] = key_line   # a field's line is its key's, not its value's
        return out

    def key(self, node: Node, path: str) -> object:
        if not isinstance(node, ScalarNode):
            what = "mapping" if isinstance(node, MappingNode) else "list"
            self.problems.append(Problem(self.file, node.start_mark.line + 1, path,
                                         f"a {what} as a mapping key", "use a plain name as the key"))
            return _UNBUILT
        return self.scalar(node, path)

    def scalar(self, node: ScalarNode, path: str) -> object:
        if node.tag == _STR_TAG:   # most of a lab file: skip the constructor's dispatch
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as err:   # an unknown tag such as !foo
            self.problems.append(_syntax_problem(self.file, err, path))
        except (ValueError, TypeError) as err:   # e.g. a date such as 2024-13-45
            self.problems.append(Problem(self.file, node.start_mark.line + 1, path, f"YAML value error: {err}"))
        return _UNBUILT


_UNBUILT = object()   # a scalar that could not be built (its problem is already recorded)


def load_documents(text: str, file: str, *, pure_python: bool = False) -> tuple[list[Document], list[Problem]]:
    """Parse every document in `text`; every problem found becomes a Problem with its line.

    `pure_python` uses PyYAML's own parser even when libyaml's is there (for comparing the two).
    """
    loader = _loader(pure_python)
    docs: list[Document] = []
    problems: list[Problem] = []
    convert = _Converter(file, problems)
    try:
        for index, node in enumerate(yaml.compose_all(text, Loader=loader)):
            doc = convert.document(node, index) if node is not None else None
            if doc is not None:
                docs.append(doc)
    except _AliasBomb as stop:
        problems.append(stop.problem)
    except yaml.MarkedYAMLError as err:
        problems.append(_syntax_problem(file, err))
    except ReaderError as err:
        problems.append(_reader_problem(file, text, err, loader))
    except yaml.YAMLError as err:
        problems.append(Problem(file, None, "", f"YAML error: {err}"))
    except RecursionError:   # the pure-Python composer recurses once per level (libyaml stops at 1000)
        problems.append(Problem(file, None, "", "YAML nests too deeply to read", "flatten the document"))
    except (ValueError, TypeError) as err:   # e.g. text that is not valid Unicode
        problems.append(Problem(file, None, "", f"YAML value error: {err}"))
    return docs, problems


def _short(path: str, keep: int = 60) -> str:
    """A path in a message about deep or repeated nesting: its start is enough to find it."""
    return path if len(path) <= keep else path[:keep] + "…"


def _loader(pure_python: bool) -> type:
    if pure_python or FAST_LOADER is None:
        return yaml.SafeLoader
    return FAST_LOADER if FAST_LOADER.yaml_path_resolvers else _CachingLoader


def _syntax_problem(file: str, err: yaml.MarkedYAMLError, path: str = "") -> Problem:
    mark = err.problem_mark or err.context_mark
    what = f"{err.context}, {err.problem}" if err.context else (err.problem or str(err))
    return Problem(file, mark.line + 1 if mark else None, path, f"YAML syntax error: {what}",
                   "fix the YAML syntax at that line")


def _reader_problem(file: str, text: str, err: ReaderError, loader: type) -> Problem:
    """A character the reader refused, at its line: libyaml counts in UTF-8 bytes, PyYAML in characters."""
    if loader is yaml.SafeLoader:
        line = text.count("\n", 0, err.position) + 1
    else:
        line = text.encode("utf-8", "surrogatepass").count(b"\n", 0, err.position) + 1
    code = ord(err.character) if isinstance(err.character, str) else err.character
    return Problem(file, line, "", f"YAML error: unacceptable character #x{code:04x}: {err.reason}",
                   "remove the character")
