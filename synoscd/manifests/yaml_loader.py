"""Safe, bounded loading of multi-document YAML into plain data plus a map from field path to line.

Hostile input must end in an error value, never a crash or a hang. PyYAML's C composer recurses once
per nesting level in C (about 220 bytes of stack each: 20,000 nested brackets crash the interpreter)
and its constructor happily expands alias bombs. So:

- a file with few YAML indicator characters (`[ { - : ?`, each nesting level needs one) cannot nest
  deeply and is composed by libyaml in C, the fast path for ordinary manifests;
- any other file runs PyYAML's pure-Python composer over libyaml's events, with a depth limit and a
  node budget for the whole file;
- plain data is then built by one walk over the node tree that records `node.start_mark.line + 1`
  for every field and refuses too much nesting, too many aliases and too many values after alias
  expansion, so an alias bomb costs at most that budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader, ReaderError
from yaml.resolver import Resolver
from yaml.scanner import Scanner
from yaml.tokens import (
    BlockEndToken,
    BlockMappingStartToken,
    BlockSequenceStartToken,
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
)

from .errors import ManifestError, Path, format_path, show

DEFAULT_MAX_FILE_BYTES = 1_048_576
MAX_DEPTH = 64  # nesting levels; real manifests use fewer than 10
_TOO_DEEP = f"YAML nested deeper than {MAX_DEPTH} levels; flatten the document"
MAX_ALIASES = 100  # per document; anchors are rare in manifests, bombs need many aliases
MAX_NODES = 100_000  # per document after alias expansion; a large real manifest has ~1,000
MAX_FILE_NODES = 100_000  # composed per file, so a flat 1 MiB list cannot cost seconds
# At most this many indicator characters -> nesting depth at most this + 1 -> the C composer's
# recursion stays under ~60 KiB of stack, safe even in a 128 KiB thread stack.
FAST_PATH_MAX_INDICATORS = 256
FAST_PATH_MAX_BYTES = 65_536  # and it composes every node before our budgets apply: keep it small
_INDICATORS = (b"[", b"{", b"-", b":", b"?")

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"

# Scalar constructors of the safe loader, reused as they are; collections are built by our walk.
_CONSTRUCTOR = SafeConstructor()
_SCALARS: dict[str, Callable[[SafeConstructor, Node], Any]] = {
    tag: SafeConstructor.yaml_constructors[tag]
    for tag in (
        _NULL,
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:binary",
        "tag:yaml.org,2002:timestamp",
    )
}


class _Refused(Exception):
    """The document is hostile or absurd; stop reading it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedComposer(Composer):
    """PyYAML's composer with a depth limit (it recurses per level) and a node budget per file."""

    if TYPE_CHECKING:  # provided by the parser this composer is mixed with

        def check_event(self, *choices: type) -> bool: ...
        def peek_event(self) -> Any: ...

    def __init__(self) -> None:
        Composer.__init__(self)
        self._depth = 0
        self._nodes = 0  # over the whole file

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._nodes += 1
        if self._nodes > MAX_FILE_NODES:
            line = self.peek_event().start_mark.line + 1
            raise _Refused(
                line, f"file has more than {MAX_FILE_NODES} YAML values; split it into smaller files"
            )
        if self.check_event(AliasEvent):  # no recursion: the node was composed where it was anchored
            return Composer.compose_node(self, parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(line, _TOO_DEEP)
            return Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1


_PLAIN_TAGS: dict[str, str] = {}  # plain scalar -> its implicit tag, for _Resolver
_PLAIN_TAGS_MAX = 65_536
_PLAIN_TAG_MAX_CHARS = 256


class _Resolver(Resolver):
    """PyYAML's resolver, remembering the tag of each short plain scalar. Its implicit resolvers are a
    fixed table of regular expressions (no path resolvers are registered), so a plain value always
    resolves to the same tag; the regexes were a third of parsing a thousand small manifests."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0] and len(value) <= _PLAIN_TAG_MAX_CHARS:
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                tag = Resolver.resolve(self, kind, value, implicit)
                if len(_PLAIN_TAGS) < _PLAIN_TAGS_MAX:
                    _PLAIN_TAGS[value] = tag
            return tag
        return Resolver.resolve(self, kind, value, implicit)


_FastLoader: Any = None
try:  # libyaml scans and parses without recursion and ~10x faster than pure Python
    from yaml._yaml import CParser

    class _Loader(_BoundedComposer, CParser, _Resolver):
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            _BoundedComposer.__init__(self)
            _Resolver.__init__(self)

    class _FastLoader(CParser, _Resolver):  # type: ignore[no-redef]  # libyaml's own composer, in C
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            _Resolver.__init__(self)

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser

    class _Loader(Reader, Scanner, Parser, _BoundedComposer, _Resolver):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)
            _BoundedComposer.__init__(self)
            _Resolver.__init__(self)


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    """One YAML document as plain data, with the 1-based line of every field path in it."""

    file: str
    index: int  # position in the file, 0-based, counting only non-empty documents
    line: int  # line of the document's root node
    data: Any
    lines: Mapping[Path, int]
    clean: bool  # False when reading it produced an error (duplicate key, unsupported tag, ...)
    # Values that could not be read (now None): later errors about them would only repeat ours.
    unreadable: frozenset[Path] = frozenset()

    def line_of(self, path: Path) -> int:
        """Line of the node at `path`, or of its nearest parent present in the document."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return self.line


class _Builder:
    """Turns one composed node tree into plain data and a line map, within a node budget."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path, int] = {}
        self.errors: list[ManifestError] = []
        self.budget = MAX_NODES
        self.seen: set[int] = set()  # collection nodes built so far: meeting one again means an alias
        self.aliases = 0
        self.in_alias = False  # inside an alias, every node is met again; count only the alias itself
        self.unreadable: set[Path] = set()

    def error(self, node: Node, path: Path, message: str, unreadable: bool = False) -> None:
        self.errors.append(ManifestError(self.file, node.start_mark.line + 1, format_path(path), message))
        if unreadable:
            self.unreadable.add(path)

    def build(self, node: Node, path: Path, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _Refused(
                node.start_mark.line + 1,
                f"document expands to more than {MAX_NODES} values (YAML aliases?); write it out plainly",
            )
        if depth > MAX_DEPTH:  # aliases can nest deeper than the composer saw
            raise _Refused(node.start_mark.line + 1, _TOO_DEEP)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        again = id(node) in self.seen
        if again and not self.in_alias:
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _Refused(
                    node.start_mark.line + 1,
                    f"more than {MAX_ALIASES} YAML aliases in one document; write the values out",
                )
        self.seen.add(id(node))
        outer, self.in_alias = self.in_alias, self.in_alias or again
        try:
            return self.collection(node, path, depth)
        finally:
            self.in_alias = outer

    def child(self, node: Node, path: Path, depth: int) -> Any:
        # Plain strings are most of a manifest: take them without a call to build().
        if node.tag == _STR and node.__class__ is ScalarNode and self.budget > 0 and depth <= MAX_DEPTH:
            self.budget -= 1
            return node.value
        return self.build(node, path, depth)

    def collection(self, node: Node, path: Path, depth: int) -> Any:
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self.error(node, path, f"unsupported YAML tag {show(node.tag)}; remove it", unreadable=True)
                return None
            items = []
            for index, child in enumerate(node.value):
                child_path = (*path, index)
                self.lines[child_path] = child.start_mark.line + 1
                items.append(self.child(child, child_path, depth + 1))
            return items
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                self.error(node, path, f"unsupported YAML tag {show(node.tag)}; remove it", unreadable=True)
                return None
            return self.mapping(node, path, depth)
        raise AssertionError(f"unknown node {node!r}")  # pragma: no cover - PyYAML has three node kinds

    def mapping(self, node: MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, path, "mapping keys must be plain values, not lists or mappings")
                continue
            key = key_node.value if key_node.tag == _STR else self.scalar(key_node, path)
            if key in first_line:
                message = f"duplicate key {show(key)} (first at line {first_line[key]}); remove one"
                self.error(key_node, (*path, key), message)
                continue
            first_line[key] = line
            child_path = (*path, key)
            self.lines[child_path] = line
            out[key] = self.child(value_node, child_path, depth + 1)
        for merge in merges:  # YAML merge keys `<<: *base`: explicit keys win, earlier sources win
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.error(source, path, "'<<' must refer to a mapping (or a list of mappings)")
                    continue
                self.merge_into(out, source, path, depth)
        return out

    def merge_into(self, out: dict[Any, Any], source: MappingNode, path: Path, depth: int) -> None:
        # Build the source with its own line map, then keep only the keys it contributes.
        own_lines, self.lines = self.lines, {}
        try:
            data = self.build(source, path, depth)
        finally:
            source_lines, self.lines = self.lines, own_lines
        if not isinstance(data, dict):
            return
        added = {key for key in data if key not in out}
        for key in added:
            out[key] = data[key]
        depth_of_key = len(path)
        for field_path, line in source_lines.items():
            if len(field_path) > depth_of_key and field_path[depth_of_key] in added:
                self.lines[field_path] = line

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag == _STR:
            return node.value
        constructor = _SCALARS.get(node.tag)
        if constructor is None:
            self.error(node, path, f"unsupported YAML tag {show(node.tag)}; remove it", unreadable=True)
            return None
        try:
            return constructor(_CONSTRUCTOR, node)
        except Exception:  # e.g. a 5,000-digit int, an impossible date, bad base64
            kind = node.tag.rsplit(":", 1)[-1]
            self.error(
                node, path, f"value {show(node.value)} cannot be read as {kind}; quote it", unreadable=True
            )
            return None


def _is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def load_documents(
    file: str, content: bytes, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> tuple[list[LoadedDocument], list[ManifestError]]:
    """Read every document of one file. Errors are returned, never raised.

    Empty documents (a stray `---`, `null`) are skipped, but a file with no documents at all is an
    error: a file truncated by accident must not read as "this app was deleted" and cause a prune.
    """
    if len(content) > max_file_bytes:
        return [], [
            ManifestError(
                file, 1, "", f"file is larger than {_size(max_file_bytes)}; split it into smaller files"
            )
        ]
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        bad = content[exc.start]
        return [], [
            ManifestError(
                file, line, "", f"file is not valid UTF-8 (byte 0x{bad:02x} on line {line}); save it as UTF-8"
            )
        ]

    documents: list[LoadedDocument] = []
    errors: list[ManifestError] = []
    fast = (
        _FastLoader is not None
        and len(content) <= FAST_PATH_MAX_BYTES
        and sum(content.count(indicator) for indicator in _INDICATORS) <= FAST_PATH_MAX_INDICATORS
    )
    loader = _FastLoader(text) if fast else _Loader(text)
    try:
        while loader.check_node():
            root = loader.get_node()
            if root is None or _is_empty(root):
                continue
            builder = _Builder(file)
            line = root.start_mark.line + 1
            builder.lines[()] = line
            data = builder.build(root, (), 1)
            errors.extend(builder.errors)
            documents.append(
                LoadedDocument(
                    file,
                    len(documents),
                    line,
                    data,
                    builder.lines,
                    not builder.errors,
                    frozenset(builder.unreadable),
                )
            )
    except _Refused as refused:
        # The parser is mid-document; reading on could take as long as the attack wants. Stop here.
        errors.append(ManifestError(file, refused.line, "", refused.message))
    except yaml.YAMLError as exc:
        # libyaml may refuse deep nesting itself, in words of its own version: say it in ours.
        deep = _too_deep_before(text, exc)
        errors.append(ManifestError(file, deep, "", _TOO_DEEP) if deep else _syntax_error(file, exc, content))
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose is not None:
            dispose()
    if not documents and not errors:
        errors.append(ManifestError(file, 1, "", "file contains no manifests; add one or delete the file"))
    return documents, errors


class _TokenScanner(Reader, Scanner):
    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)


_OPEN = (FlowSequenceStartToken, FlowMappingStartToken, BlockSequenceStartToken, BlockMappingStartToken)
_CLOSE = (FlowSequenceEndToken, FlowMappingEndToken, BlockEndToken)


def _too_deep_before(text: str, exc: yaml.YAMLError) -> int | None:
    """The line where nesting first passes MAX_DEPTH, if it does before the place `exc` names.

    Only run on an error, with PyYAML's pure-Python scanner: it keeps no stack of its own and stops
    within MAX_DEPTH levels, and it does not depend on what a libyaml version calls its own limit."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    stop = mark.index if mark is not None else len(text)
    depth = 0
    try:
        scanner: Any = _TokenScanner(text)  # the reader checks every character here
        while scanner.check_token():
            token = scanner.get_token()
            if token.start_mark.index > stop:
                return None
            if isinstance(token, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    return int(token.start_mark.line) + 1
            elif isinstance(token, _CLOSE):
                depth -= 1
    except yaml.YAMLError:
        return None
    return None


def _syntax_error(file: str, exc: yaml.YAMLError, content: bytes) -> ManifestError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    if mark is None and isinstance(exc, ReaderError):  # bad characters: the reader knows only an offset
        line = content.count(b"\n", 0, exc.position) + 1
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    what = f"{context}, {problem}" if context else problem
    return ManifestError(file, line, "", f"YAML syntax error: {what}; fix the YAML")


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"
