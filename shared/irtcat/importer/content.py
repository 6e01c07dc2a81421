"""Item content as the tablet shows it: QTI's XHTML turned into sanitised HTML.

Stems, prompts, options and stimuli are serialised from the item's XML (QTI's own elements
dropped, XHTML and MathML kept) and then cleaned by an allow-list sanitiser (ammonia, through
``nh3``): text structure, tables, lists, MathML, ``img`` with ``alt``, ``audio``. Scripts, event
handlers, styles, frames, forms and every URL that is not a file of the bank's own media are
removed; content its author hid (``display: none``, ``hidden``) is dropped with its element,
since without its style it would show. A media reference is resolved inside the package, recorded, and rewritten to
``media/<path>`` (the tablet serves it from the bank bucket).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from xml.etree.ElementTree import Element

import nh3

MATHML_TAGS = {
    "math", "mi", "mn", "mo", "ms", "mtext", "mspace", "mrow", "mfrac", "msqrt", "mroot", "msub", "msup",
    "msubsup", "munder", "mover", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom",
    "menclose", "mmultiscripts", "mprescripts", "none", "semantics", "annotation",
}
_TEXT_TAGS = {
    "p", "br", "span", "div", "b", "i", "em", "strong", "u", "sub", "sup", "small", "code", "pre", "blockquote",
    "q", "cite", "abbr", "dfn", "kbd", "samp", "var", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li",
    "dl", "dt", "dd", "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "colgroup", "col",
    "figure", "figcaption", "img", "audio", "source", "label", "address",
}
ALLOWED_TAGS = _TEXT_TAGS | MATHML_TAGS
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "img": {"src", "alt", "width", "height"},
    "audio": {"src", "controls"},
    "source": {"src", "type"},
    "td": {"colspan", "rowspan", "scope"},
    "th": {"colspan", "rowspan", "scope"},
    "col": {"span"},
    "ol": {"start", "type"},
    "span": {"data-response"},
    "div": {"data-response"},
    "math": {"display"},
    "mo": {"stretchy", "fence", "separator", "form", "lspace", "rspace"},
    "mfrac": {"linethickness"},
    "mstyle": {"displaystyle", "scriptlevel", "mathvariant"},
    "mi": {"mathvariant"},
    "mtd": {"columnspan", "rowspan"},
    "menclose": {"notation"},
    "annotation": {"encoding"},
}
_MEDIA_ATTRS = {"img": "src", "audio": "src", "source": "src"}
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def sanitise(fragment: str) -> str:
    """``fragment`` with everything outside the allow-list removed (module docstring)."""
    return nh3.clean(fragment, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=set(),
                     link_rel=None, strip_comments=True).strip()


def local_name(tag: object) -> str:
    """An element's name without its namespace; a QTI 3 ``qti-kebab-name`` as QTI 2's ``kebabName``."""
    name = tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
    if name.startswith("qti-"):
        head, *rest = name[4:].split("-")
        return head + "".join(part.title() for part in rest)
    return name


# a replacement for an element while serialising: None keeps it, a string stands for it
Replace = Callable[[Element, str], str | None]
MediaRef = Callable[[str], str]


def serialise(parent: Element, replace: Replace | None = None, media: MediaRef | None = None,
              with_tail: bool = False) -> str:
    """The HTML of ``parent``'s content (its text and children; not the element itself).
    ``replace(el, name)`` may stand in for an element (an interaction's placeholder); ``media``
    maps a media reference to its bank path (and raises when it is refused)."""
    out = [html.escape(parent.text or "", quote=False)]
    for child in parent:
        out.append(_element(child, replace, media))
        out.append(html.escape(child.tail or "", quote=False))
    return "".join(out)


def _element(el: Element, replace: Replace | None, media: MediaRef | None) -> str:
    if not isinstance(el.tag, str):  # a comment or processing instruction
        return ""
    name = local_name(el.tag)
    if replace is not None:
        stand_in = replace(el, name)
        if stand_in is not None:
            return stand_in
    attrs = {k.rsplit("}", 1)[-1]: v for k, v in el.attrib.items()}
    if _HIDDEN.search(attrs.get("style", "")) or "hidden" in attrs:
        return ""  # content its author hid (a note, an answer): styles are dropped, so it would show
    if name == "object":  # QTI 2's media element: an image or a sound
        kind = attrs.get("type", "")
        data = attrs.get("data", "")
        if media is not None and data:
            src = media(data)
            if kind.startswith("audio/"):
                return f'<audio controls src="{html.escape(src)}"></audio>'
            alt = " ".join("".join(el.itertext()).split()) or attrs.get("title", "")
            return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'
        return ""
    if name in _MEDIA_ATTRS and media is not None and attrs.get(_MEDIA_ATTRS[name]):
        attrs[_MEDIA_ATTRS[name]] = media(attrs[_MEDIA_ATTRS[name]])
    rendered = "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items() if ":" not in k and k != "xmlns")
    inner = serialise(el, replace, media)
    if name in ("img", "br", "hr", "col", "source") and not inner:
        return f"<{name}{rendered}>"
    return f"<{name}{rendered}>{inner}</{name}>"
