"""An imported item's media: each reference resolved inside its package, checked (a picture
or a sound, present, within the size limits, an SVG without scripts or links) and named by its
place in the bank's media folder."""

from __future__ import annotations

import posixpath

from ..domain.bank import media_type
from .safety import Package, Refused, check_svg, resolve_inside


class MediaCollector:
    """Resolves an item's media references inside its package, checks them, and names their
    place in the bank's media folder."""

    def __init__(self, pkg: Package, base: str, prefix: str) -> None:
        self.pkg, self.base, self.prefix = pkg, base, prefix
        self.found: dict[str, tuple[Package, str]] = {}

    def __call__(self, href: str) -> str:
        member = resolve_inside(self.base, href)
        try:
            media_type(member)
        except ValueError as exc:
            raise Refused(str(exc)) from None
        if not self.pkg.exists(member):
            raise Refused(f"missing media file {member}")
        if member.lower().endswith(".svg"):
            check_svg(self.pkg.read(member), member)
        else:
            self.pkg.check(member)
        target = posixpath.join("media", self.prefix, member) if self.prefix else posixpath.join("media", member)
        self.found[target] = (self.pkg, member)
        return target
