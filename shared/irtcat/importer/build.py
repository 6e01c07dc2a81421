"""``irtcat bank import``: QTI packages, folders, item files and sheets into one bank.

Every input is read through :mod:`irtcat.importer.safety`; every item either comes in or is
refused with its reason (never silently, never taking the others down). Media an imported item
refers to are copied beside the bank (``BANK.media/``), and only those.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from ..domain.bank import Item, ItemBank
from ..domain.base import first_error
from .content import local_name, sanitise, serialise
from .drafts import Collected, Draft, ImportReport
from .export import EXTENSION, EXTENSION_FORMAT
from .media import MediaCollector
from .parameters import Parameters, apply_parameters, read_parameters
from .qti import attr, child, children, parse_item
from .safety import Package, Refused, parse_xml, resolve_inside
from .sheet import collect_sheet

SHEET_SUFFIXES = (".csv", ".xlsx")


def _metadata(resource: Element | None) -> dict[str, str]:
    """A manifest resource's metadata, flattened: ``lom.general.keyword`` -> its text (values of
    one key joined by ``; ``), LOM's ``string``/``langstring`` wrappers dropped."""
    out: dict[str, list[str]] = {}
    if resource is None:
        return {}
    meta = child(resource, "metadata")
    if meta is None:
        return {}

    def walk(el: Element, path: list[str]) -> None:
        kids = [c for c in el if isinstance(c.tag, str)]
        name = local_name(el.tag).lower()
        here = path if name in ("string", "langstring", "value", "metadata") else [*path, name]
        if not kids and (el.text or "").strip():
            out.setdefault(".".join(here), []).append((el.text or "").strip())
        for c in kids:
            walk(c, here)

    walk(meta, [])
    return {k: "; ".join(dict.fromkeys(v))[:500] for k, v in out.items()}


def _catalog(root: Element) -> dict[str, str]:
    """A QTI 3 item's ``qti-catalog-info``: each card's text as ``qti.catalog.<catalog>.<support>``."""
    out: dict[str, str] = {}
    info = child(root, "catalogInfo")
    for catalog in children(info, "catalog") if info is not None else []:
        for card in children(catalog, "card"):
            text = " ".join("".join(card.itertext()).split())
            if text:
                out[f"qti.catalog.{attr(catalog, 'id') or '-'}.{attr(card, 'support') or '-'}"] = text[:500]
    return out


def _stimulus(pkg: Package, member: str, prefix: str) -> tuple[str, str, dict[str, tuple[Package, str]]]:
    """(id, sanitised HTML, media) of a shared stimulus: a QTI 3 ``assessmentStimulus`` or an
    XHTML passage a QTI 2 item embeds."""
    root = parse_xml(pkg.read(member), member)
    media = MediaCollector(pkg, member, prefix)
    if local_name(root.tag) == "assessmentStimulus":
        body = child(root, "stimulusBody")
        if body is None:
            raise Refused(f"stimulus {member}: no stimulus body")
        return attr(root, "identifier") or Path(member).stem, sanitise(serialise(body, None, media)), media.found
    body = next((e for e in root.iter() if local_name(e.tag) == "body"), root)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(member).stem), sanitise(serialise(body, None, media)), media.found


def _qti_item(pkg: Package, member: str, resource: Element | None, prefix: str, out: Collected,
              report: ImportReport) -> None:
    source = f"{pkg.label}:{member}" if pkg.label != member else member
    res_id = attr(resource, "identifier") if resource is not None else None
    try:
        root = parse_xml(pkg.read(member), member)
        if local_name(root.tag) != "assessmentItem" and resource is None:
            return  # a stimulus, a test or some other file of a folder without a manifest
        media = MediaCollector(pkg, member, prefix)
        parsed = parse_item(root, media)
        passage = None
        for ident, href in parsed.stimulus_refs:
            sid, html, smedia = _stimulus(pkg, resolve_inside(member, href), prefix)
            sid = ident or sid
            out.stimuli.setdefault(sid, html)
            out.stimulus_media.setdefault(sid, smedia)
            passage = passage or sid
    except Refused as exc:
        item_id = res_id or (attr(root, "identifier") if "root" in locals() else None)
        report.refuse(item_id, source, str(exc))
        return
    item_id = res_id or parsed.identifier
    fields: dict[str, Any] = {
        "item_id": item_id, "stem": parsed.stem, "responses": parsed.responses, "processing": parsed.processing,
        "score_values": parsed.score_values, "title": parsed.title, "source": source,
        "metadata": {**_metadata(resource), **_catalog(root), "qti.version": parsed.version,
                     **({"qti.identifier": parsed.identifier} if parsed.identifier != item_id else {})},
        "attributes": {"passage": passage} if passage else {},
    }
    out.drafts.append(Draft(fields, source, media.found))


def collect_package(pkg: Package, prefix: str, out: Collected, report: ImportReport) -> None:
    """Every item of a QTI package or folder (the manifest's item resources, or every item file),
    and the extension file of a package irtcat exported."""
    if pkg.exists(EXTENSION):
        try:
            ext = json.loads(pkg.read(EXTENSION))
        except ValueError:
            raise Refused(f"{pkg.label}: {EXTENSION} is not JSON") from None
        if not isinstance(ext, dict) or ext.get("format") != EXTENSION_FORMAT:
            raise Refused(f"{pkg.label}: {EXTENSION} is not a {EXTENSION_FORMAT} file")
        out.extension_items.update(ext.get("items", {}))
        out.extension_bank = ext.get("bank", {})
    if pkg.exists("imsmanifest.xml"):
        manifest = parse_xml(pkg.read("imsmanifest.xml"), "imsmanifest.xml")
        resources = [r for r in manifest.iter() if local_name(r.tag) == "resource"]
        for res in resources:
            kind = (attr(res, "type") or "").lower()
            href = attr(res, "href") or ""
            if "item" not in kind or not href:
                continue
            try:
                member = resolve_inside("imsmanifest.xml", href)
            except Refused as exc:
                report.refuse(attr(res, "identifier"), f"{pkg.label}:{href}", str(exc))
                continue
            _qti_item(pkg, member, res, prefix, out, report)
        return
    for member in pkg.names():
        if member.lower().endswith(".xml"):
            _qti_item(pkg, member, None, prefix, out, report)


def import_bank(paths: list[Path], out_path: Path, bank_id: str | None = None, parameters: Path | None = None,
                content_area_from: str | None = None) -> tuple[ItemBank | None, ImportReport]:
    """Read every input, build the bank (written to ``out_path`` with its media beside it,
    ``<name>.media/``) and the report. Returns ``(None, report)`` when no item came in."""
    report = ImportReport()
    collected = Collected()
    for k, path in enumerate(paths):
        prefix = "" if len(paths) == 1 else f"{k + 1:02d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', path.stem)}"
        if not path.exists():
            report.refuse(None, str(path), "no such file or folder")
            continue
        try:
            if path.suffix.lower() in SHEET_SUFFIXES:
                collect_sheet(path, prefix, collected, report)
            else:
                collect_package(Package(path), prefix, collected, report)
        except Refused as exc:
            report.refuse(None, path.name, str(exc))
    params: Parameters = read_parameters(parameters) if parameters is not None else Parameters()
    items: list[Item] = []
    sources: dict[str, str] = {}
    media: dict[str, tuple[Package, str]] = {}
    for draft in collected.drafts:
        item_id = draft.fields["item_id"]
        if item_id in sources:
            report.refuse(item_id, draft.source, f"duplicate item id {item_id} (already imported from "
                                                 f"{sources[item_id]}); rename one")
            continue
        fields = dict(draft.fields)
        exported = collected.extension_items.get(item_id)
        if exported is not None:
            fields = _as_exported(fields, exported)
        if content_area_from:
            fields["content_area"] = fields["metadata"].get(content_area_from, fields.get("content_area", ""))
            if content_area_from == "title":
                fields["content_area"] = fields.get("title") or ""
        try:
            item = Item.model_validate(fields) if exported is not None else apply_parameters(fields, params)
        except Refused as exc:
            report.refuse(item_id, draft.source, str(exc))
            continue
        except ValueError as exc:
            report.refuse(item_id, draft.source, first_error(exc))
            continue
        sources[item_id] = draft.source
        items.append(item)
        media.update(draft.media)
        report.imported.append({"item_id": item.item_id, "source": draft.source, "kind": item.kind,
                                "categories": len(item.score_values) if item.score_values
                                else len(item.thresholds) + 1 if item.model else 2,
                                "status": item.status})
    for item_id in params.unused({d.fields["item_id"] for d in collected.drafts}):
        report.refuse(item_id, str(parameters), "parameters for an item that is not imported")
    if not items:
        return None, report
    used = {it.attributes.get("passage") for it in items}
    stimuli = {k: v for k, v in collected.stimuli.items() if k in used}
    own = {"bank_id": re.sub(r"[^A-Za-z0-9_.-]", "-", out_path.stem), "version": 1, "model": params.bank_model(),
           **collected.extension_bank}
    if bank_id:
        own["bank_id"] = bank_id
    bank = ItemBank.model_validate({**own, "items": items, "stimuli": stimuli})
    for sid in stimuli:
        media.update(collected.stimulus_media.get(sid, {}))
    write_media(media, out_path)
    bank.dump(out_path)
    return bank, report


# where the export put the interaction of an item whose stem had no place for it
_EXPORTED_PLACEHOLDER = re.compile(r'<div><(div|span) data-response="[^"]*"></\1></div>$')


def _as_exported(fields: dict[str, Any], exported: dict[str, Any]) -> dict[str, Any]:
    """An item read from an irtcat export, with what its extension file kept: its parameters,
    status, attributes, metadata and source, and a keyed item's own scoring."""
    out = {k: v for k, v in fields.items() if k in ("item_id", "stem", "responses", "processing", "score_values")}
    scoring = exported.get("scoring")
    if scoring is not None:  # the tablet shows a keyed item's options itself: no placeholder in its stem
        out = {k: v for k, v in out.items() if k not in ("responses", "processing", "score_values")} | scoring
        out["stem"] = _EXPORTED_PLACEHOLDER.sub("", out.get("stem") or "") or None
    return out | {k: v for k, v in exported.items() if k != "scoring"}


def media_dir(bank_path: Path) -> Path:
    """Where a bank's media live: ``BANK.media/`` beside ``BANK.json``."""
    return bank_path.with_name(bank_path.stem + ".media")


def write_media(media: dict[str, tuple[Package, str]], bank_path: Path) -> None:
    """Copy each media file to the bank's media folder (never outside it)."""
    root = media_dir(bank_path).resolve()
    for target, (pkg, member) in sorted(media.items()):
        dest = (root / target.removeprefix("media/")).resolve()
        if not dest.is_relative_to(root):
            raise Refused(f"media {target}: a path outside the bank's media folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(pkg.read(member))
