"""YAML text -> plain Python data, plus the line and column of every key and value.

PyYAML's safe loader is used only to compose the node tree and to construct scalars; mappings and lists are
built here so that each node's position is recorded under its document path, duplicate keys are caught (the
stock loader silently keeps the last), and YAML 1.1 surprises in keys (``on:`` read as ``true``) are
reported instead of turning into keys nobody wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.runbook.problems import DocPath

MAX_NODES = 100_000
"""Aliases are expanded while building; this bounds a document that expands exponentially (a YAML bomb)."""

_STANDARD_COLLECTIONS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_KEY_TYPES = {
    "tag:yaml.org,2002:bool": "true/false",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
}


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based line and column, as editors count them."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark) -> Mark:
        return cls(mark.line + 1, mark.column + 1)


START = Mark(1, 1)


@dataclass(frozen=True)
class NodeMarks:
    """Where a node is: its value, the key it sits under (None for list items and the root), and, for a
    one-line text value whose characters map 1:1 onto the source, where those characters begin."""

    value: Mark
    key: Mark | None = None
    text: Mark | None = None


class SourceMap:
    """Document paths -> positions in the file."""

    def __init__(self, marks: Mapping[DocPath, NodeMarks]) -> None:
        self._marks = dict(marks)

    def locate(self, path: DocPath, *, at_key: bool = False, offset: int | None = None) -> Mark:
        """The position of ``path``; for a path that does not exist (a missing key), the key of its nearest
        existing ancestor, which is where the missing key belongs."""
        for end in range(len(path), -1, -1):
            marks = self._marks.get(path[:end])
            if marks is None:
                continue
            if end < len(path) or at_key:
                return marks.key or marks.value
            if offset is not None and marks.text is not None:
                return Mark(marks.text.line, marks.text.column + offset)
            return marks.value
        return START


_TOO_DEEP = "the document nests lists or mappings hundreds of levels deep; a runbook needs a handful"
_SURROGATE = re.compile("[\ud800-\udfff]")


class YamlError(Exception):
    """The text is not a YAML document drctl accepts; ``problems`` are (position, message) pairs."""

    def __init__(self, problems: Sequence[tuple[Mark, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(message for _, message in self.problems))


def load_yaml(text: str) -> tuple[object, SourceMap]:
    """Parse one YAML document. Raises ``YamlError`` for syntax errors, an empty or multi-document file,
    duplicate or non-text keys, unsupported tags and recursive aliases."""
    try:
        # The reader checks every character as it is constructed, so this is inside the try too.
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
    except RecursionError:
        # PyYAML's parser recurses once per level of nesting; a runbook never nests near Python's limit.
        raise YamlError([(START, _TOO_DEEP)]) from None
    except yaml.MarkedYAMLError as err:
        raise YamlError([_syntax_problem(err)]) from None
    except yaml.YAMLError as err:
        raise YamlError([(_reader_mark(err, text), f"invalid YAML: {_reader_message(err)}")]) from None
    try:
        if node is None:
            raise YamlError([(START, "the file is empty; a runbook starts with 'apiVersion: drctl/v1'")])
        builder = _Builder(loader, text)
        try:
            data = builder.build(node, ())
        except RecursionError:
            raise YamlError([(START, _TOO_DEEP)]) from None
        if builder.problems:
            raise YamlError(builder.problems)
        return data, SourceMap(builder.marks)
    finally:
        loader.dispose()


def _surrogate_message(value: str) -> str:
    """YAML does not join escaped surrogate pairs (``"\\ud83d\\ude42"``, as JSON writers escape an emoji), and
    no text may hold a lone surrogate."""
    found = _SURROGATE.search(value)
    assert found is not None
    code = f"\\u{ord(found.group()):04x}"
    return (
        f"the text holds the escaped surrogate {code}, which YAML does not combine into a character; write the "
        "character itself, or escape it as \\U followed by 8 hex digits"
    )


def _syntax_problem(err: yaml.MarkedYAMLError) -> tuple[Mark, str]:
    if isinstance(err, ComposerError) and err.problem == "but found another document" and err.problem_mark:
        return Mark.of(err.problem_mark), "a runbook file holds one YAML document; this is a second one"
    mark = err.problem_mark or err.context_mark
    message = f"invalid YAML: {err.problem or err.context or 'malformed document'}"
    if err.problem and "'\\t'" in err.problem:
        message += "; indent with spaces, not tabs"
    if err.problem and err.context and err.context_mark:
        message += f" ({err.context} that starts at line {err.context_mark.line + 1})"
    return (Mark.of(mark) if mark else START), message


def _reader_message(err: yaml.YAMLError) -> str:
    character = getattr(err, "character", None)
    if isinstance(character, int):
        return f"character {chr(character)!r} (#x{character:04x}) is not allowed in YAML; remove it"
    return str(err).splitlines()[0]


def _reader_mark(err: yaml.YAMLError, text: str) -> Mark:
    position = getattr(err, "position", None)
    if not isinstance(position, int):
        return START
    before = text[:position]
    return Mark(before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, text: str) -> None:
        self._loader = loader
        self._text = text
        self.marks: dict[DocPath, NodeMarks] = {}
        self.problems: list[tuple[Mark, str]] = []
        self._count = 0
        # Ids of the collections on the current path: an alias to one of them would recurse forever.
        self._open: set[int] = set()

    def build(self, node: Node, path: DocPath, key: Mark | None = None) -> object:
        self._count += 1
        if self._count > MAX_NODES:
            raise YamlError([(Mark.of(node.start_mark), f"the document has more than {MAX_NODES} nodes")])
        self.marks[path] = NodeMarks(Mark.of(node.start_mark), key, self._text_mark(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if node.tag not in _STANDARD_COLLECTIONS:
            self.problems.append((Mark.of(node.start_mark), f"unsupported YAML tag {node.tag!r}"))
            return None
        if id(node) in self._open:
            self.problems.append((Mark.of(node.start_mark), "this alias refers to a mapping or list containing it"))
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _scalar(self, node: ScalarNode) -> object:
        if isinstance(node.value, str) and _SURROGATE.search(node.value):
            self.problems.append((Mark.of(node.start_mark), _surrogate_message(node.value)))
            return None
        try:
            return self._loader.construct_object(node)
        except yaml.MarkedYAMLError as err:
            self.problems.append(_syntax_problem(err))
            return None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            # An implicit or explicit tag whose text is not of its type, e.g. 2024-02-30 or !!int abc (PyYAML
            # raises AttributeError for an explicit !!timestamp on text that is no date at all).
            self.problems.append(
                (Mark.of(node.start_mark), f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}; quote it")
            )
            return None

    def _mapping(self, node: MappingNode, path: DocPath) -> dict[str, object]:
        result: dict[str, object] = {}
        first: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key is None:
                continue
            mark = Mark.of(key_node.start_mark)
            if key in first:
                self.problems.append((mark, f"duplicate key {key!r} (first at line {first[key].line})"))
                continue
            first[key] = mark
            result[key] = self.build(value_node, (*path, key), mark)
        return result

    def _key(self, node: Node) -> str | None:
        mark = Mark.of(node.start_mark)
        if not isinstance(node, ScalarNode):
            self.problems.append((mark, "a key must be text, not a mapping or a list"))
            return None
        if node.tag == "tag:yaml.org,2002:merge":
            self.problems.append((mark, "YAML merge keys ('<<') are not supported in runbooks; write the keys out"))
            return None
        if node.tag != "tag:yaml.org,2002:str":
            kind = _KEY_TYPES.get(node.tag, f"tag {node.tag}")
            self.problems.append((mark, f"key {node.value!r} is read by YAML as {kind}, not text; quote it"))
            return None
        if _SURROGATE.search(node.value):
            self.problems.append((mark, _surrogate_message(node.value)))
            return None
        return str(node.value)

    def _text_mark(self, node: Node) -> Mark | None:
        if not isinstance(node, ScalarNode) or node.start_mark.line != node.end_mark.line:
            return None
        source = self._text[node.start_mark.index : node.end_mark.index]
        start = Mark.of(node.start_mark)
        if node.style is None and source == node.value:
            return start
        if node.style in ("'", '"') and source[1:-1] == node.value:
            return Mark(start.line, start.column + 1)
        return None
