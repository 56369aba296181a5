"""Strict YAML reading shared by every file we read by hand-edited YAML (plans, profiles).

Safe loading only (a `yaml.SafeLoader` subclass), plus one refusal PyYAML does not make:
a key repeated in one mapping. `safe_load` silently keeps the last of two `uplink:` keys,
exactly the hand-editing mistake that must not pass unseen.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

# PyYAML is imported when a file is first read or written, not with this module: the plan
# model imports it, and the wizard's first frame (which reads no YAML) need not wait for it.


class UnreadableFile(OSError):
    """A file that is refused or cannot be read; str() is one line: the path and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, reason, str(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def read_regular(path: str | os.PathLike[str], limit: int, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file, at most `limit` of them, for every file read from a path a
    user or the box supplies. A FIFO does not hang (opened without blocking, then refused), a
    device or socket is refused (a link to /dev/zero cannot eat the memory), and a file larger
    than `limit` is refused without reading it. With follow_symlinks=False a symbolic link is
    refused too. Raises UnreadableFile (an OSError) naming the file and the reason."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableFile(path, "does not exist", errno.ENOENT) from None
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_symlinks:
            raise UnreadableFile(path, "is a symbolic link; refused", errno.ELOOP) from None
        raise UnreadableFile(path, (e.strerror or str(e)).lower(), e.errno or errno.EIO) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UnreadableFile(path, "is a directory; a regular file is needed", errno.EISDIR)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(path, "is not a regular file (a device, FIFO or socket); refused")
        if st.st_size > limit:
            raise UnreadableFile(path, f"is {st.st_size} bytes, more than the {limit} allowed; refused "
                                       "without reading it", errno.EFBIG)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnreadableFile(path, f"is more than the {limit} bytes allowed; refused", errno.EFBIG)
        return b"".join(chunks)
    except UnreadableFile:
        raise
    except OSError as e:
        raise UnreadableFile(path, (e.strerror or str(e)).lower(), e.errno or errno.EIO) from None
    finally:
        os.close(fd)


class YamlProblem(Exception):
    """Text that is not acceptable YAML; the message says where (line, column) and what."""


@functools.cache
def strict_loader() -> type[yaml.SafeLoader]:
    """The loader: libyaml's parser when PyYAML has it (the profiles load in 6 ms instead of
    46), with the same safe constructors (pure Python otherwise), refusing duplicate keys.
    Made (and PyYAML imported) on first use; `strict_loader.cache_clear()` makes it again."""
    import yaml

    base = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader

    class _StrictLoader(base):  # type: ignore[misc, valid-type]
        pass

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    return _StrictLoader


def read_small(path: str | os.PathLike[str], limit: int, label: str, holds: str) -> bytes:
    """read_regular for a small file named on the command line, with a one-line error that
    starts with `label` (e.g. "--devices devices.csv") and, for a file too large, says what it
    `holds`. Raises SmallFileError."""
    try:
        return read_regular(path, limit)
    except OSError as e:
        reason = f"is larger than {limit} bytes; {holds}" if e.errno == errno.EFBIG else (e.strerror or str(e))
        raise SmallFileError(label, reason) from None


class SmallFileError(ValueError):
    """A small file refused; str() is one line: the label and why."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"{label}: {reason}")


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    import yaml

    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a key must be plain text",
                                                    key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (each key may appear once)", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


def load_strict(text: str) -> Any:
    """Parse YAML text safely, refusing duplicate keys; raise YamlProblem with the location."""
    import yaml

    loader = strict_loader()
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise YamlProblem(f"{where}{problem}") from None
    except (ValueError, RecursionError) as e:  # PyYAML raises these on some hostile inputs
        raise YamlProblem(str(e)) from None


def describe(value: Any) -> str:
    """How a wrong value is named in a message: briefly, as its YAML reader would see it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = repr(value)
        return f"the text {shown if len(shown) <= 40 else shown[:37] + '...'}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


@functools.cache
def _strict_dumper() -> type[yaml.SafeDumper]:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    _Dumper.add_representer(str, _represent_str)
    return _Dumper


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # YAML reads NEL and the Unicode line/paragraph separators as line breaks, and PyYAML
    # writes them raw in plain or quoted scalars: force double quotes, where they are escaped.
    if any(ch in "\x85\u2028\u2029" or unicodedata.category(ch)[0] == "C" for ch in value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


def dump(data: Any) -> str:
    """YAML text for plain data, keys in the given order, that `load_strict` reads back equal."""
    import yaml

    return yaml.dump(data, Dumper=_strict_dumper(), sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=100)
