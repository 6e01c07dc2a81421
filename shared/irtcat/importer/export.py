"""``irtcat bank export BANK.json --qti OUT.zip``: a bank as a QTI 3.0 content package.

The package holds one ``qti-assessment-item`` per item (its responses, body and processing;
a bank's own keyed items as a choice or text entry scored by ``match_correct``), one
``qti-assessment-stimulus`` per shared stimulus, the bank's media, the parameters as the CSV
``--parameters`` reads (``parameters.csv``, and as QTI usage data, ``usagedata.xml``), and what QTI has no place for in
:data:`EXTENSION` (a JSON file: the bank's own fields, and per item its status, parameters,
SEs, exposure parameters, attributes, metadata, source, and a keyed item's own scoring).
Importing the package gives the same bank back.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ..domain.bank import Item, ItemBank
from ..domain.responses import ResponseSpec

EXTENSION = "irtcat-bank.json"
EXTENSION_FORMAT = "irtcat-bank-extension/1"
QTI_NS = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
TEMPLATES = "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/"
_VOID = {"img", "br", "hr", "col", "source"}
# the item fields QTI carries itself: everything else travels in the extension file
_IN_QTI = {"item_id", "stem", "responses", "processing", "score_values"}
# a keyed item's scoring, which its QTI form expresses but its import would not give back as such
_KEYED = ("options", "key", "answer_value", "tolerance", "credits", "credit_bands")


def _n(x: float) -> str:
    """A number as written back: the shortest text that reads as the same float."""
    return repr(float(x))


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


class _Xhtml(HTMLParser):
    """Sanitised HTML as XHTML inside a QTI 3 item: void elements closed, MathML in its
    namespace, each response placeholder replaced by its interaction."""

    def __init__(self, interactions: dict[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.interactions = interactions
        self.used: set[str] = set()
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        response = dict(attrs).get("data-response")
        if self.skip or (response is not None and response in self.interactions):
            if not self.skip and response is not None:
                self.out.append(self.interactions[response])
                self.used.add(response)
            self.skip += tag not in _VOID
            return
        rendered = "".join(f' {k}="{_attr(v or "")}"' for k, v in attrs)
        if tag == "math":
            rendered = f' xmlns="{MATHML_NS}"' + rendered
        self.out.append(f"<{tag}{rendered}/>" if tag in _VOID else f"<{tag}{rendered}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            self.skip -= 1
            return
        if tag not in _VOID:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(escape(data, quote=False))


def xhtml(html: str, interactions: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """``html`` as XHTML, with ``interactions`` at their placeholders; and the ones placed."""
    parser = _Xhtml(interactions or {})
    parser.feed(html)
    parser.close()
    return "".join(parser.out), parser.used


def _interaction(r: ResponseSpec) -> str:
    if r.kind in ("choice", "multiple_response", "inline_choice"):
        assert r.options is not None and r.option_ids is not None
        tag = "qti-inline-choice" if r.kind == "inline_choice" else "qti-simple-choice"
        fixed = ' fixed="true"'
        choices = "".join(f'<{tag} identifier="{_attr(oid)}"{fixed if k in r.fixed else ""}>{xhtml(text)[0]}</{tag}>'
                          for k, (oid, text) in enumerate(zip(r.option_ids, r.options, strict=True)))
        shuffle = f' shuffle="{str(r.shuffle).lower()}"'
        if r.kind == "inline_choice":
            return f'<qti-inline-choice-interaction response-identifier="{_attr(r.id)}"{shuffle}>{choices}' \
                   "</qti-inline-choice-interaction>"
        limits = (f' max-choices="{r.max_choices or 0}" min-choices="{r.min_choices}"'
                  if r.kind == "multiple_response" else ' max-choices="1"')
        prompt = f"<qti-prompt>{xhtml(r.prompt)[0]}</qti-prompt>" if r.prompt else ""
        return f'<qti-choice-interaction response-identifier="{_attr(r.id)}"{shuffle}{limits}>{prompt}{choices}' \
               "</qti-choice-interaction>"
    return f'<qti-text-entry-interaction response-identifier="{_attr(r.id)}"/>'


def _declaration(r: ResponseSpec) -> str:
    cardinality = "multiple" if r.kind == "multiple_response" else "single"
    base = {"numeric": "float", "text": "string"}.get(r.kind, "identifier")
    correct = "".join(f"<qti-value>{escape(v)}</qti-value>" for v in r.correct)
    out = f'<qti-response-declaration identifier="{_attr(r.id)}" cardinality="{cardinality}" base-type="{base}">'
    if correct:
        out += f"<qti-correct-response>{correct}</qti-correct-response>"
    if r.mapping is not None:
        bounds = "".join(f' {name}="{_n(value)}"' for name, value in (("lower-bound", r.lower_bound),
                                                                     ("upper-bound", r.upper_bound))
                         if value is not None)
        case = "" if r.case_sensitive else ' case-sensitive="false"'
        entries = "".join(f'<qti-map-entry map-key="{_attr(k)}" mapped-value="{_n(v)}"{case}/>'
                          for k, v in r.mapping.items())
        out += f'<qti-mapping default-value="{_n(r.mapping_default)}"{bounds}>{entries}</qti-mapping>'
    return out + "</qti-response-declaration>"


def _check(r: ResponseSpec) -> str:
    """``match``, or ``equal`` with the response's tolerance, against its correct value."""
    pair = f'<qti-variable identifier="{_attr(r.id)}"/><qti-correct identifier="{_attr(r.id)}"/>'
    if r.kind == "numeric" and r.tolerance_mode != "exact":
        return (f'<qti-equal tolerance-mode="{r.tolerance_mode}" tolerance="{_n(r.tolerance[0])} {_n(r.tolerance[1])}">'
                f"{pair}</qti-equal>")
    return f"<qti-match>{pair}</qti-match>"


def _set(value: str) -> str:
    return f'<qti-set-outcome-value identifier="SCORE">{value}</qti-set-outcome-value>'


def _base(x: float) -> str:
    return f'<qti-base-value base-type="float">{_n(x)}</qti-base-value>'


def _processing(responses: list[ResponseSpec], processing: str) -> str:
    exact = all(r.kind != "numeric" or r.tolerance_mode == "exact" for r in responses)
    if len(responses) == 1 and (processing == "map_response" or exact):
        return f'<qti-response-processing template="{TEMPLATES}{processing}.xml"/>'
    if processing == "map_response":
        maps = "".join(f'<qti-map-response identifier="{_attr(r.id)}"/>' for r in responses)
        return f"<qti-response-processing>{_set(f'<qti-sum>{maps}</qti-sum>')}</qti-response-processing>"
    if processing == "match_correct":
        checks = "".join(_check(r) for r in responses)
        cond = checks if len(responses) == 1 else f"<qti-and>{checks}</qti-and>"
        return (f"<qti-response-processing><qti-response-condition><qti-response-if>{cond}{_set(_base(1))}"
                f"</qti-response-if><qti-response-else>{_set(_base(0))}</qti-response-else>"
                "</qti-response-condition></qti-response-processing>")
    score = '<qti-variable identifier="SCORE"/>'
    adds = "".join(f"<qti-response-condition><qti-response-if>{_check(r)}"
                   + _set(f"<qti-sum>{score}{_base(r.points)}</qti-sum>")
                   + "</qti-response-if></qti-response-condition>" for r in responses)
    return f"<qti-response-processing>{_set(_base(0))}{adds}</qti-response-processing>"


def keyed_responses(item: Item) -> tuple[list[ResponseSpec], str]:
    """A bank's own keyed item as QTI sees it: a choice (its key, or its credits as a mapping)
    or a numeric entry (its tolerance, or its bands as a mapping of the exact answer)."""
    if item.options is not None:
        ids = [f"o{k + 1}" for k in range(len(item.options))]
        if item.credits is not None:
            mapping = {oid: float(c) for oid, c in zip(ids, item.credits, strict=True)}
            return [ResponseSpec(id="RESPONSE", kind="choice", options=item.options, option_ids=ids, shuffle=True,
                                 mapping=mapping)], "map_response"
        assert item.key is not None
        return [ResponseSpec(id="RESPONSE", kind="choice", options=item.options, option_ids=ids, shuffle=True,
                             correct=[ids[item.key]])], "match_correct"
    assert item.answer_value is not None
    tolerance = item.credit_bands[0] if item.credit_bands else item.tolerance
    return [ResponseSpec(id="RESPONSE", kind="numeric", correct=[f"{item.answer_value!r}"],
                         tolerance_mode="absolute" if tolerance else "exact",
                         tolerance=(tolerance, tolerance))], "match_correct"


def item_xml(item: Item, passage: str | None) -> str:
    """A QTI 3.0 ``qti-assessment-item`` of ``item`` (its media at the package's root)."""
    responses, processing = ((item.responses, item.processing) if item.responses is not None and item.processing
                             else keyed_responses(item))
    interactions = {r.id: _interaction(r) for r in responses}
    stem = re.sub(r'src="media/', 'src="../', item.stem or "")
    body, used = xhtml(stem, interactions)
    body += "".join(f"<div>{interactions[r.id]}</div>" for r in responses if r.id not in used)
    ref = (f'<qti-assessment-stimulus-ref identifier="{_attr(passage)}" href="../stimuli/{_attr(passage)}.xml"/>'
           if passage else "")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<qti-assessment-item xmlns="{QTI_NS}" identifier="{_attr(item.item_id)}" '
            f'title="{_attr(item.title or item.item_id)}" adaptive="false" time-dependent="false">'
            + "".join(_declaration(r) for r in responses)
            + '<qti-outcome-declaration identifier="SCORE" cardinality="single" base-type="float"/>'
            + ref + f"<qti-item-body>{body}</qti-item-body>" + _processing(list(responses), processing)
            + "</qti-assessment-item>\n")


def usage_data(bank: ItemBank) -> str:
    """The bank's parameters as a QTI 3.0 usage-data file: one ordinary statistic per parameter
    and item (``a``, ``b`` or ``b1``..., ``c``, ``d``, ``model``), each SE as its ``std-error``."""
    stats = []
    for item in bank.items:
        values: dict[str, Any] = {"model": item.model or bank.model, "a": item.a}
        ses: dict[str, Any] = {"a": item.se_a}
        if item.thresholds:
            values.update({f"b{k + 1}": b for k, b in enumerate(item.thresholds)})
            se_b = item.se_b if isinstance(item.se_b, list) else []
            ses.update({f"b{k + 1}": se for k, se in enumerate(se_b)})
        else:
            values.update(b=item.b, c=item.c, d=item.d)
            ses.update(b=item.se_b, c=item.se_c)
        for name, value in values.items():
            se = f' std-error="{_n(ses[name])}"' if ses.get(name) is not None else ""
            count = f' case-count="{item.n_responses}"' if item.n_responses else ""
            text = value if isinstance(value, str) else _n(value)
            stats.append(f'<qti-item-statistic name="{name}" glossary-uri="https://irtcat.example/glossary#{name}" '
                         f'context="{_attr(bank.bank_id)}-v{bank.version}"{count}{se}>'
                         f'<qti-target-object identifier="{_attr(item.item_id)}"/>'
                         f"<qti-ordinary-statistic><qti-value>{escape(text)}</qti-value></qti-ordinary-statistic>"
                         "</qti-item-statistic>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<qti-usage-data xmlns="http://www.imsglobal.org/xsd/imsqti_usagedata_v3p0" '
            'glossary-uri="https://irtcat.example/glossary">' + "".join(stats) + "</qti-usage-data>\n")


def _file_name(item_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", item_id)


def export_bank(bank: ItemBank, media: Path, out: Path) -> dict[str, Any]:
    """Write ``bank`` (with its media folder) as a QTI 3.0 package at ``out``; a summary."""
    resources: list[str] = []
    extension: dict[str, Any] = {"format": EXTENSION_FORMAT,
                                 "bank": bank.model_dump(mode="json", exclude={"items", "stimuli"}, exclude_none=True),
                                 "items": {}}
    params = io.StringIO()
    writer = csv.writer(params)
    writer.writerow(["item_id", "model", "a", "b", "c", "d", "b1", "b2", "b3", "b4", "b5"])
    files = sorted(p for p in media.rglob("*") if p.is_file()) if media.is_dir() else []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for sid, html in bank.stimuli.items():
            body = xhtml(re.sub(r'src="media/', 'src="../', html))[0]
            z.writestr(f"stimuli/{_file_name(sid)}.xml", '<?xml version="1.0" encoding="UTF-8"?>\n'
                       f'<qti-assessment-stimulus xmlns="{QTI_NS}" identifier="{_attr(sid)}" title="{_attr(sid)}">'
                       f"<qti-stimulus-body>{body}</qti-stimulus-body></qti-assessment-stimulus>\n")
            resources.append(f'<resource identifier="{_attr(sid)}" type="imsqti_stimulus_xmlv3p0" '
                             f'href="stimuli/{_file_name(sid)}.xml"><file href="stimuli/{_file_name(sid)}.xml"/>'
                             "</resource>")
        for item in bank.items:
            passage = item.attributes.get("passage")
            href = f"items/{_file_name(item.item_id)}.xml"
            z.writestr(href, item_xml(item, passage if passage in bank.stimuli else None))
            resources.append(f'<resource identifier="{_attr(item.item_id)}" type="imsqti_item_xmlv3p0" '
                             f'href="{href}"><file href="{href}"/></resource>')
            own = item.model_dump(mode="json", exclude=_IN_QTI | set(_KEYED), exclude_none=True)
            if item.responses is None:
                own["scoring"] = item.model_dump(mode="json", include=set(_KEYED), exclude_none=True)
            extension["items"][item.item_id] = own
            b = item.thresholds
            writer.writerow([item.item_id, item.model or bank.model, item.a, "" if b else item.b,
                             "" if b else item.c, "" if b else item.d, *(b + [""] * (5 - len(b)))])
        for path in files:
            # a bank's media/<path> is the package's <path>: importing the package gives it back
            z.write(path, path.relative_to(media).as_posix())
        z.writestr("parameters.csv", params.getvalue())
        z.writestr("usagedata.xml", usage_data(bank))
        z.writestr(EXTENSION, json.dumps(extension, indent=1, sort_keys=True))
        z.writestr("imsmanifest.xml", '<?xml version="1.0" encoding="UTF-8"?>\n'
                   '<manifest xmlns="http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1" '
                   f'identifier="{_attr(bank.bank_id)}-v{bank.version}"><metadata><schema>QTI Package</schema>'
                   "<schemaversion>3.0.0</schemaversion></metadata><organizations/><resources>"
                   + "".join(resources) + "</resources></manifest>\n")
    return {"out": str(out), "items": len(bank.items), "stimuli": len(bank.stimuli), "media_files": len(files)}
