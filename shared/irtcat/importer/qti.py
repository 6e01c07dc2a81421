"""IMS QTI items (2.1, 2.2 and 3.0) as bank items scored by their own rules.

An item's ``responseDeclaration``s give each response's correct value and mapping; its body
gives the interactions (``choiceInteraction`` of single or multiple cardinality,
``inlineChoiceInteraction``, ``textEntryInteraction`` of a number or a string); its
``responseProcessing`` says how they add up: a standard template (``match_correct``,
``map_response``) or one of the custom shapes this module recognises (:func:`processing_of`).
Anything else is refused with its reason (:class:`~irtcat.importer.safety.Refused`). QTI 3's
``qti-kebab-case`` names are read as QTI 2's ``camelCase`` ones throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from ..domain.responses import MAX_SCORE_VALUES, ResponseSpec, attainable_scores
from .content import local_name, sanitise, serialise
from .safety import Refused

SUPPORTED = {"choiceInteraction", "inlineChoiceInteraction", "textEntryInteraction"}
REFUSED_INTERACTIONS = {
    "hotspotInteraction": "hotspot", "graphicOrderInteraction": "graphic order",
    "graphicAssociateInteraction": "graphic associate", "graphicGapMatchInteraction": "graphic gap match",
    "selectPointInteraction": "select point", "positionObjectInteraction": "position object",
    "orderInteraction": "order", "matchInteraction": "match", "associateInteraction": "associate",
    "gapMatchInteraction": "gap match", "sliderInteraction": "slider", "extendedTextInteraction": "extended text",
    "uploadInteraction": "upload", "drawingInteraction": "drawing", "hottextInteraction": "hottext",
    "mediaInteraction": "media", "customInteraction": "custom", "portableCustomInteraction": "portable custom",
    "endAttemptInteraction": "end attempt",
}
_NAMESPACES = {"imsqti_v2p1": "2.1", "imsqti_v2p2": "2.2", "imsqtiasi_v3p0": "3.0"}


def attr(el: Element, name: str, default: str | None = None) -> str | None:
    """An attribute by its QTI 2 name, or its QTI 3 kebab-case spelling."""
    if name in el.attrib:
        return el.attrib[name]
    kebab = "".join(f"-{c.lower()}" if c.isupper() else c for c in name)
    return el.attrib.get(kebab, default)


def children(el: Element, name: str) -> list[Element]:
    return [c for c in el if local_name(c.tag) == name]


def child(el: Element, name: str) -> Element | None:
    found = children(el, name)
    return found[0] if found else None


def qti_version(root: Element) -> str:
    """``2.1``, ``2.2`` or ``3.0`` from the namespace (``unknown`` when none matches)."""
    ns = root.tag[1:].split("}")[0] if isinstance(root.tag, str) and root.tag.startswith("{") else ""
    return next((v for k, v in _NAMESPACES.items() if k in ns), "unknown")


@dataclass
class Declaration:
    """A ``responseDeclaration``: cardinality, base type, correct values and mapping."""

    cardinality: str
    base_type: str
    correct: list[str]
    mapping: dict[str, float] | None = None
    mapping_default: float = 0.0
    lower_bound: float | None = None
    upper_bound: float | None = None
    case_sensitive: bool = True


def _float(text: str | None, what: str) -> float:
    try:
        return float(text or "")
    except ValueError:
        raise Refused(f"{what}: {text!r} is not a number") from None


def declarations(root: Element) -> dict[str, Declaration]:
    out: dict[str, Declaration] = {}
    for decl in children(root, "responseDeclaration"):
        rid = attr(decl, "identifier") or ""
        correct_el = child(decl, "correctResponse")
        correct = [(v.text or "").strip() for v in children(correct_el, "value")] if correct_el is not None else []
        d = Declaration(attr(decl, "cardinality") or "single", attr(decl, "baseType") or "", correct)
        if child(decl, "areaMapping") is not None:
            raise Refused(f"response {rid}: an area mapping (a graphic item) cannot be scored adaptively")
        mapping = child(decl, "mapping")
        if mapping is not None:
            d.mapping = {}
            for entry in children(mapping, "mapEntry"):
                d.mapping[attr(entry, "mapKey") or ""] = _float(attr(entry, "mappedValue"), f"response {rid}")
                if (attr(entry, "caseSensitive") or "true").lower() == "false":
                    d.case_sensitive = False
            d.mapping_default = _float(attr(mapping, "defaultValue", "0"), f"response {rid}")
            lower, upper = attr(mapping, "lowerBound"), attr(mapping, "upperBound")
            d.lower_bound = _float(lower, f"response {rid}") if lower is not None else None
            d.upper_bound = _float(upper, f"response {rid}") if upper is not None else None
        out[rid] = d
    return out


@dataclass
class Body:
    """An item body: its stem HTML (interactions replaced by placeholders) and its responses."""

    stem: str
    responses: list[dict[str, Any]] = field(default_factory=list)
    stimuli: list[str] = field(default_factory=list)  # QTI 2 shared passages: hrefs of HTML objects


def read_body(root: Element, decls: dict[str, Declaration], media: Callable[[str], str]) -> Body:
    """The stem and the response specs (without their scoring) of an item's body."""
    body_el = child(root, "itemBody")
    if body_el is None:
        raise Refused("the item has no itemBody")
    specs: list[dict[str, Any]] = []
    passages: list[str] = []

    def replace(el: Element, name: str) -> str | None:
        if name == "object" and (attr(el, "type") or "").startswith(("text/html", "application/xhtml")):
            passages.append(attr(el, "data") or "")
            return ""
        if name in REFUSED_INTERACTIONS:
            kind = REFUSED_INTERACTIONS[name]
            raise Refused(f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} interaction cannot be scored adaptively")
        if name.endswith("Interaction") and name not in SUPPORTED:
            raise Refused(f"a {name} cannot be scored adaptively")
        if name in ("rubricBlock", "templateBlock", "templateInline", "feedbackBlock", "feedbackInline",
                    "printedVariable", "assessmentStimulusRef"):
            return ""
        if name not in SUPPORTED:
            return None
        rid = attr(el, "responseIdentifier") or ""
        decl = decls.get(rid)
        if decl is None:
            raise Refused(f"interaction for {rid!r} has no responseDeclaration")
        specs.append(_interaction(el, name, rid, decl, media))
        inline = name != "choiceInteraction"
        return f'<span data-response="{rid}"></span>' if inline else f'<div data-response="{rid}"></div>'

    stem = sanitise(serialise(body_el, replace, media))
    if not specs:
        raise Refused("the item has no interaction this engine can score (or none at all)")
    return Body(stem, specs, passages)


def _interaction(el: Element, name: str, rid: str, decl: Declaration, media: Callable[[str], str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": rid}
    if name in ("choiceInteraction", "inlineChoiceInteraction"):
        if decl.cardinality not in ("single", "multiple") or decl.base_type not in ("identifier", ""):
            raise Refused(f"response {rid}: a choice of cardinality {decl.cardinality} cannot be scored adaptively")
        choice_tag = "simpleChoice" if name == "choiceInteraction" else "inlineChoice"
        choices = [c for c in el.iter() if local_name(c.tag) == choice_tag]
        spec["kind"] = ("inline_choice" if name == "inlineChoiceInteraction"
                        else "multiple_response" if decl.cardinality == "multiple" else "choice")
        spec["options"] = [sanitise(serialise(c, None, media)) for c in choices]
        spec["option_ids"] = [attr(c, "identifier") or "" for c in choices]
        spec["fixed"] = [k for k, c in enumerate(choices) if (attr(c, "fixed") or "false").lower() == "true"]
        spec["shuffle"] = (attr(el, "shuffle") or "false").lower() == "true"
        if spec["kind"] == "multiple_response":
            spec["max_choices"] = int(attr(el, "maxChoices") or 0) or None
            spec["min_choices"] = int(attr(el, "minChoices") or 0)
        prompt = child(el, "prompt")
        if prompt is not None:
            spec["prompt"] = sanitise(serialise(prompt, None, media))
    else:  # textEntryInteraction
        if decl.cardinality != "single":
            raise Refused(f"response {rid}: a text entry of cardinality {decl.cardinality} cannot be scored")
        if decl.base_type in ("float", "integer"):
            spec["kind"] = "numeric"
        elif decl.base_type == "string":
            spec["kind"] = "text"
        else:
            raise Refused(f"response {rid}: a text entry of base type {decl.base_type!r} cannot be scored")
    return spec


def _expr(el: Element | None) -> tuple[str, Element | None]:
    """The name and element of the one expression inside ``el``."""
    inner = [c for c in el if isinstance(c.tag, str)] if el is not None else []
    return (local_name(inner[0].tag), inner[0]) if len(inner) == 1 else ("", None)


def _score_target(el: Element) -> str:
    return attr(el, "identifier") or ""


def processing_of(root: Element, responses: list[dict[str, Any]]) -> str:
    """The item's processing (``match_correct``, ``map_response`` or ``sum``), setting each
    response's ``points``/tolerance where a custom processing gives them. Custom shapes read:
    ``SCORE = mapResponse(R)`` or a sum of them; one ``responseIf`` of ``match``/``equal`` (or an
    ``and`` of them) setting a value (match_correct); several ``responseIf``s each adding a value
    for one response's ``match``/``equal`` (sum). ``Refused`` otherwise."""
    rp = child(root, "responseProcessing")
    if rp is None:
        raise Refused("an item with no scoring (no responseProcessing)")
    template = attr(rp, "template") or attr(rp, "templateLocation") or ""
    known = {r["id"] for r in responses}
    if template:
        for name in ("map_response_point", "match_correct", "map_response"):
            if template.rstrip("/").rsplit("/", 1)[-1].removesuffix(".xml") == name:
                if name == "map_response_point":
                    break
                return name
        raise Refused(f"response processing template {template!r} is not one this engine scores")
    maps: list[str] = []
    sets: list[tuple[list[str], float]] = []
    adds: list[tuple[str, float]] = []
    by_id = {r["id"]: r for r in responses}
    for step in rp:
        if not isinstance(step.tag, str):
            continue
        name = local_name(step.tag)
        if name == "setOutcomeValue" and _score_target(step) == "SCORE":
            maps.extend(_mapped(step, known))
        elif name == "responseCondition":
            branches = [c for c in step if isinstance(c.tag, str)]
            head = branches[0] if branches else None
            if head is None or local_name(head.tag) != "responseIf" or any(
                    local_name(b.tag) == "responseElseIf" for b in branches):
                raise Refused("custom response processing with else-if branches is not one this engine scores")
            cond_el = [c for c in head if isinstance(c.tag, str)]
            if len(cond_el) != 2 or local_name(cond_el[1].tag) != "setOutcomeValue":
                raise Refused("custom response processing: a condition must set SCORE once")
            matched = _matches(cond_el[0], by_id)
            value_kind, value = _set_value(cond_el[1])
            for other in branches[1:]:
                if local_name(other.tag) == "responseElse":
                    sets_el = [c for c in other if isinstance(c.tag, str)]
                    if len(sets_el) != 1 or _set_value(sets_el[0]) != ("set", 0.0):
                        raise Refused("custom response processing: an else branch must set SCORE to 0")
            if value_kind == "set":
                sets.append((matched, value))
            else:
                if len(matched) != 1:
                    raise Refused("custom response processing: each added score must check one response")
                adds.append((matched[0], value))
        elif name not in ("setOutcomeValue",):
            raise Refused(f"custom response processing with <{name}> is not one this engine scores")
    if maps and not sets and not adds:
        for r in responses:
            if r["id"] not in maps:
                r["unmapped"] = True
        return "map_response"
    if len(sets) == 1 and not maps and not adds and set(sets[0][0]) == known:
        return "match_correct"
    if adds and not sets and not maps:
        points = dict(adds)
        if len(points) != len(adds):
            raise Refused("custom response processing: a response adds to the score twice")
        for r in responses:
            r["points"] = points.get(r["id"], 0.0)
        return "sum"
    raise Refused("custom response processing of a shape this engine does not score")


def _mapped(step: Element, known: set[str]) -> list[str]:
    """The responses a ``setOutcomeValue SCORE`` maps: ``mapResponse(R)``, a sum of them (with
    ``variable SCORE``), or a base value 0 (the initialisation)."""
    name, el = _expr(step)
    terms = [c for c in el if isinstance(c.tag, str)] if name == "sum" and el is not None else [el]
    out = []
    for t in terms:
        if t is None:
            raise Refused("custom response processing: SCORE set to nothing")
        tname = local_name(t.tag)
        if tname == "mapResponse" and attr(t, "identifier") in known:
            out.append(attr(t, "identifier") or "")
        elif not ((tname == "baseValue" and _float(t.text, "baseValue") == 0.0)
                  or (tname == "variable" and attr(t, "identifier") == "SCORE")):
            raise Refused(f"custom response processing: SCORE set by <{tname}>, not a mapping")
    return out


def _set_value(step: Element) -> tuple[str, float]:
    """``("set", v)`` for SCORE = v, ``("add", v)`` for SCORE = SCORE + v."""
    if local_name(step.tag) != "setOutcomeValue" or _score_target(step) != "SCORE":
        raise Refused("custom response processing: a condition may only set SCORE")
    name, el = _expr(step)
    if name == "baseValue" and el is not None:
        return "set", _float(el.text, "baseValue")
    if name == "sum" and el is not None:
        terms = [c for c in el if isinstance(c.tag, str)]
        names = sorted(local_name(t.tag) for t in terms)
        if names == ["baseValue", "variable"]:
            var = next(t for t in terms if local_name(t.tag) == "variable")
            val = next(t for t in terms if local_name(t.tag) == "baseValue")
            if attr(var, "identifier") == "SCORE":
                return "add", _float(val.text, "baseValue")
    raise Refused(f"custom response processing: SCORE set by <{name or '?'}>")


def _matches(cond: Element, by_id: dict[str, dict[str, Any]]) -> list[str]:
    """The responses a condition checks against their correct value (``match``, ``equal`` with
    its tolerance, or an ``and`` of them)."""
    name = local_name(cond.tag)
    if name == "and":
        out: list[str] = []
        for c in cond:
            if isinstance(c.tag, str):
                out.extend(_matches(c, by_id))
        return out
    if name not in ("match", "equal"):
        raise Refused(f"custom response processing: a condition <{name}> is not one this engine scores")
    args = [c for c in cond if isinstance(c.tag, str)]
    var = next((a for a in args if local_name(a.tag) == "variable"), None)
    other = next((a for a in args if a is not var), None)
    rid = attr(var, "identifier") if var is not None else None
    if rid not in by_id or other is None:
        raise Refused("custom response processing: a condition must compare a response with its correct value")
    spec = by_id[rid]
    if local_name(other.tag) == "baseValue":
        spec.setdefault("correct_override", []).append((other.text or "").strip())
    elif local_name(other.tag) != "correct" or attr(other, "identifier") != rid:
        raise Refused(f"custom response processing: response {rid} is compared with something else")
    if name == "equal":
        mode = attr(cond, "toleranceMode") or "exact"
        tol = [_float(t, "tolerance") for t in (attr(cond, "tolerance") or "0").split()]
        spec["tolerance_mode"] = mode
        spec["tolerance"] = (tol[0], tol[-1])
    return [rid]


@dataclass
class ParsedItem:
    """What an item file gives: its ids, title, content and scoring, and the stimuli it refers to."""

    identifier: str
    title: str | None
    version: str
    stem: str
    responses: list[ResponseSpec]
    processing: str
    score_values: list[float]
    stimulus_refs: list[tuple[str, str]]  # (identifier, href)


def parse_item(root: Element, media: Callable[[str], str]) -> ParsedItem:
    """An assessment item's content and scoring (``Refused`` with the reason otherwise)."""
    if local_name(root.tag) != "assessmentItem":
        raise Refused(f"not an assessment item (<{local_name(root.tag)}>)")
    identifier = attr(root, "identifier") or ""
    if children(root, "templateDeclaration") or children(root, "templateProcessing"):
        raise Refused("a template-driven item (its content changes per student) cannot be calibrated as one item")
    if (attr(root, "adaptive") or "false").lower() == "true":
        raise Refused("an adaptive (multi-attempt) QTI item cannot be scored once")
    decls = declarations(root)
    body = read_body(root, decls, media)
    processing = processing_of(root, body.responses)
    specs = []
    for raw in body.responses:
        decl = decls[raw["id"]]
        correct = raw.pop("correct_override", None) or decl.correct
        unmapped = raw.pop("unmapped", False)
        specs.append(ResponseSpec.model_validate({
            **raw, "correct": correct,
            "mapping": None if unmapped else decl.mapping, "mapping_default": 0.0 if unmapped else decl.mapping_default,
            "lower_bound": decl.lower_bound, "upper_bound": decl.upper_bound,
            "case_sensitive": decl.case_sensitive}))
    if processing == "map_response" and all(s.mapping is None for s in specs):
        raise Refused("map_response scoring, but no response has a mapping")
    if processing != "map_response" and any(not s.correct for s in specs if s.points):
        missing = next(s.id for s in specs if not s.correct)
        raise Refused(f"response {missing}: no correct response declared")
    scores = sorted(attainable_scores(specs, processing))  # type: ignore[arg-type]
    if len(scores) < 2:
        raise Refused("its scoring gives every answer the same score")
    if len(scores) > MAX_SCORE_VALUES:
        raise Refused(f"its scoring reaches {len(scores)} distinct scores (at most {MAX_SCORE_VALUES}: a category "
                      "nobody reaches cannot be calibrated)")
    refs = [(attr(r, "identifier") or "", attr(r, "href") or "") for r in children(root, "assessmentStimulusRef")]
    refs += [("", href) for href in body.stimuli]
    return ParsedItem(identifier, attr(root, "title"), qti_version(root), body.stem, specs, processing, scores, refs)
