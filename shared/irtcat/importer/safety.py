"""Reading uploaded files without letting them hurt the server.

- **XML** is parsed by defusedxml with DTDs forbidden: no entity expansion (the "billion
  laughs" bomb), no external entities (XXE), no network or file access. QTI needs no DTD.
- **Zip packages** are read member by member, never extracted wholesale: a member whose name
  is absolute or climbs out of the package (``../``) is refused, as are more than
  :data:`MAX_MEMBERS` members, a member larger than :data:`MAX_MEMBER_BYTES` once inflated or a
  package above :data:`MAX_TOTAL_BYTES` (a zip bomb), counted on the bytes actually inflated,
  not on the sizes the archive claims.
- **Media paths** are resolved inside the package; one that leaves it is refused.
- **SVG** media is parsed as XML and refused when it carries a script, an event handler, a
  ``foreignObject`` or a link to anything but a fragment.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 50 * 2**20
MAX_TOTAL_BYTES = 500 * 2**20
MAX_XML_BYTES = 10 * 2**20


class Refused(ValueError):
    """An input that is refused, with the reason (the item it belongs to is reported, not imported)."""


def parse_xml(data: bytes, name: str) -> Element:
    """The root element of ``data`` (``Refused``: too large, not XML, or with a DTD or entities)."""
    if len(data) > MAX_XML_BYTES:
        raise Refused(f"{name}: XML larger than {MAX_XML_BYTES // 2**20} MiB")
    try:
        root: Element = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Refused(f"{name}: XML with a DTD or entity declarations is refused ({type(exc).__name__})") from None
    except Exception as exc:  # ParseError and the expat errors it wraps
        raise Refused(f"{name}: not well-formed XML ({exc})") from None
    return root


def safe_member(name: str) -> str:
    """``name`` as a normalised relative POSIX path inside a package (``Refused`` when it is
    absolute, has a drive, or climbs out of the package)."""
    if "\\" in name or name.startswith("/") or PurePosixPath(name).is_absolute() or ":" in name.split("/")[0]:
        raise Refused(f"package member {name!r}: an absolute path")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or "\x00" in norm:
        raise Refused(f"package member {name!r}: a path that leaves the package")
    return norm


def resolve_inside(base: str, href: str) -> str:
    """``href`` (relative to the package file ``base``) as a package path (``Refused`` when it
    is a URL, absolute, or leaves the package)."""
    if not href or "://" in href or href.startswith(("/", "data:", "javascript:")) or ":" in href.split("/")[0]:
        raise Refused(f"media {href!r}: only files inside the package are accepted")
    return safe_member(posixpath.join(posixpath.dirname(base), href.split("#")[0].split("?")[0]))


class Package:
    """The files of an upload: a zip package, a folder, or loose files, read by package path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._zip: zipfile.ZipFile | None = None
        self._inflated: dict[str, int] = {}
        self._names: dict[str, Any]
        if root.is_file() and zipfile.is_zipfile(root):
            self._zip = zipfile.ZipFile(root)
            members = self._zip.infolist()
            if len(members) > MAX_MEMBERS:
                raise Refused(f"{root.name}: more than {MAX_MEMBERS} files in the package")
            self._names = {safe_member(m.filename): m for m in members if not m.is_dir()}
        elif root.is_dir():
            self._names = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
                           if p.is_file() and not p.is_symlink()}
        else:
            self._names = {root.name: root}

    @property
    def label(self) -> str:
        return self.root.name

    def names(self) -> list[str]:
        return sorted(self._names)

    def exists(self, name: str) -> bool:
        return name in self._names

    def read(self, name: str) -> bytes:
        """The bytes of a member (``Refused``: absent, or over the size limits as inflated)."""
        return b"".join(self._chunks(name))

    def check(self, name: str) -> None:
        """``Refused`` unless the member exists and inflates within the limits (nothing kept)."""
        for _ in self._chunks(name):
            pass

    def _chunks(self, name: str) -> Iterator[bytes]:
        entry: Any = self._names.get(name)
        if entry is None:
            raise Refused(f"{name}: not in the package")
        if self._zip is None:
            path: Path = entry
            if path.stat().st_size > MAX_MEMBER_BYTES:
                raise Refused(f"{name}: larger than {MAX_MEMBER_BYTES // 2**20} MiB")
            yield path.read_bytes()
            return
        size = 0
        with self._zip.open(entry) as fh:
            for chunk in iter(lambda: fh.read(1 << 16), b""):
                size += len(chunk)
                if size > MAX_MEMBER_BYTES:
                    raise Refused(f"{name}: inflates past {MAX_MEMBER_BYTES // 2**20} MiB (a zip bomb?)")
                # counted once per member, however often it is read
                self._inflated[name] = max(self._inflated.get(name, 0), size)
                if sum(self._inflated.values()) > MAX_TOTAL_BYTES:
                    raise Refused(f"{self.label}: inflates past {MAX_TOTAL_BYTES // 2**20} MiB in all (a zip bomb?)")
                yield chunk

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


_SVG_BANNED = {"script", "foreignobject", "iframe", "object", "embed", "handler", "listener"}


def check_svg(data: bytes, name: str) -> None:
    """``Refused`` when an SVG could run or fetch anything: a script, an event handler
    (``on*``), a ``foreignObject`` or a link other than to a fragment of itself."""
    root = parse_xml(data, name)
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1].lower() if isinstance(el.tag, str) else ""
        if tag in _SVG_BANNED:
            raise Refused(f"{name}: an SVG with <{tag}> is refused")
        for attr, value in el.attrib.items():
            local = attr.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                raise Refused(f"{name}: an SVG with an event handler ({local}) is refused")
            if local == "href" and not value.strip().startswith("#"):
                raise Refused(f"{name}: an SVG that links to {value[:60]!r} is refused")
            if local == "style" and ("url(" in value.lower() or "expression" in value.lower()):
                raise Refused(f"{name}: an SVG whose style loads something is refused")
