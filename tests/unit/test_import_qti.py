"""QTI import: items of every supported kind, in QTI 2.1, 2.2 and 3.0, come in with the keys and
scores their declarations and processing state; every refused kind is refused by name; the
tablet's view of an imported item carries no key, mapping or tolerance."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from irtcat.domain.bank import ItemBank
from irtcat.domain.policy import TestPolicy
from irtcat.domain.scoring import InvalidChoice, score_choice, simulated_answer
from irtcat.domain.session import ServedItem, new_session
from irtcat.importer.build import import_bank

DATA = Path(__file__).parent.parent / "data" / "qti"
SECRET = "s3cret"
# what would carry a key in a reply to the tablet
KEY_FIELD = re.compile(r'"(key|answer_value|correct|credits|credit_bands|mapping|mapping_default|tolerance|'
                       r'tolerance_mode|points|score_values|processing|option_ids|lower_bound|upper_bound)"\s*:')


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())
    return out


@pytest.fixture(scope="module")
def qti3(tmp_path_factory: pytest.TempPathFactory) -> tuple[ItemBank, Any, Path]:
    tmp = tmp_path_factory.mktemp("qti3")
    package = _zip(DATA / "qti3", tmp / "sample.zip")
    bank, report = import_bank([package], tmp / "bank.json",
                               content_area_from="lom.classification.taxonpath.taxon.entry")
    assert bank is not None
    return bank, report, tmp


def _view(bank: ItemBank, item_id: str, seq: int = 1) -> dict[str, Any]:
    """The tablet's view of ``item_id`` served at ``seq`` (its status does not matter here)."""
    live = bank.model_copy(update={"items": [it.model_copy(update={"status": "operational"}) for it in bank.items]})
    started = new_session("sess-1", "u1", TestPolicy(test_id="t"), live, None)
    state = started.model_copy(update={"served": [ServedItem(seq=k + 1, item_id=item_id) for k in range(seq)],
                                       "secret": SECRET})
    view: dict[str, Any] = json.loads(state.view(bank).model_dump_json())["item"]
    return view


def _label(view: dict[str, Any], text: str, response: int = 0) -> str:
    options = view["responses"][response]["options"]
    return str(next(o["id"] for o in options if re.sub("<[^>]+>", "", o["text"]) == text))


def test_a_qti3_package_imports_every_supported_kind_and_refuses_a_hotspot(qti3: tuple[ItemBank, Any, Path]) -> None:
    bank, report, tmp = qti3
    kinds = {r["item_id"]: (r["kind"], r["categories"], r["status"]) for r in report.imported}
    assert kinds == {
        "geo-area": ("choice", 2, "pretest"), "alg-formula": ("choice", 2, "pretest"),
        "primes": ("multiple_response", 2, "pretest"), "primes-partial": ("multiple_response", 3, "pretest"),
        "capital": ("text", 2, "pretest"), "half": ("numeric", 2, "pretest"), "verb": ("inline_choice", 2, "pretest"),
        "blanks": ("numeric", 3, "pretest"), "river-1": ("choice", 2, "pretest")}
    assert report.refused == [{"item_id": "map-click", "source": "sample.zip:items/hotspot.xml",
                               "reason": "a hotspot interaction cannot be scored adaptively"}]
    # metadata, title and source kept; the LOM subject became the content area
    geo = bank.item("geo-area")
    assert geo.content_area == "geometry" and bank.item("alg-formula").content_area == "algebra"
    assert geo.title == "Area of a triangle" and geo.source == "sample.zip:items/choice-image.xml"
    assert geo.metadata is not None and geo.metadata["qti.version"] == "3.0"
    assert geo.metadata["qti.catalog.tri-img.spoken"] == "A right triangle, base eight centimetres, height five."
    # media copied beside the bank, referenced by their bank path
    assert 'src="media/media/triangle.png"' in (geo.stem or "")
    assert (tmp / "bank.media" / "media" / "triangle.png").read_bytes()[:4] == b"\x89PNG"
    # the shared stimulus: once in the bank, its item carries it as its passage
    assert bank.item("river-1").attributes == {"passage": "river"}
    assert "two hundred kilometres" in bank.stimuli["river"]
    assert (tmp / "bank.media" / "media" / "shape.svg").exists()
    # partial credit: a mapping with partial values gives ordered categories and a GPCM item
    partial = bank.item("primes-partial")
    assert partial.score_values == [0.0, 1.0, 2.0] and partial.model == "GPCM" and len(partial.thresholds) == 2


def test_scripts_handlers_and_styles_are_removed_and_mathml_kept(qti3: tuple[ItemBank, Any, Path]) -> None:
    bank, _, _ = qti3
    stem = bank.item("alg-formula").stem or ""
    assert "<math><mrow><msup><mi>x</mi><mn>2</mn></msup>" in stem
    for bad in ("script", "onclick", "style=", "evil.example", "steal", "the answer is 3"):
        assert bad not in stem


def test_each_kind_scores_by_its_own_rules(qti3: tuple[ItemBank, Any, Path]) -> None:
    bank, _, _ = qti3

    def score(item_id: str, choice: object, seq: int = 1) -> int:
        return score_choice(bank.item(item_id), choice, SECRET, seq).score

    view = _view(bank, "geo-area")
    assert score("geo-area", _label(view, "20 cm²")) == 1 and score("geo-area", _label(view, "40 cm²")) == 0
    assert view["responses"][0]["options"][3]["text"] == "None of these"  # fixed="true" keeps its place
    view = _view(bank, "alg-formula")
    assert [o["text"] for o in view["responses"][0]["options"]] == ["1", "<math><mn>3</mn></math>", "9"]  # no shuffle
    assert score("alg-formula", "B") == 1 and score("alg-formula", "C") == 0
    view = _view(bank, "primes")
    right = sorted(_label(view, t) for t in ("2", "3", "7"))
    assert score("primes", right) == 1 and score("primes", right[:2]) == 0
    assert score("primes", [*right, _label(view, "9")]) == 0
    view = _view(bank, "primes-partial")
    two, three, four = (_label(view, t) for t in ("2", "3", "4"))
    assert [score("primes-partial", c) for c in ([two, three], [two], [two, four], [four], [two, three, four])] == \
        [2, 1, 0, 0, 1]  # lower bound 0: a wrong tick costs, never below 0
    assert [score("capital", t) for t in ("Paris", "paris", " PARIS ", "Lyon")] == [1, 1, 1, 0]
    assert [score("half", x) for x in (0.5, 0.509, 0.49, 0.52, 1)] == [1, 1, 1, 0, 0]
    view = _view(bank, "verb")
    assert score("verb", _label(view, "went")) == 1 and score("verb", _label(view, "go")) == 0
    assert [score("blanks", c) for c in ({"R1": 12, "R2": "dozen"}, {"R1": 12, "R2": "Dozen"}, {"R1": 11, "R2": "x"})
            ] == [2, 1, 0]
    for item_id, bad, reason in (("primes", "A", "send a list"), ("blanks", 12, "send an object keyed by R1, R2"),
                                 ("blanks", {"R1": 12}, "one value per response"), ("half", "0.5", "not a number"),
                                 ("geo-area", ["A", "B"], "choose one option"), ("verb", "Z", "not among")):
        with pytest.raises(InvalidChoice, match=reason):
            score(item_id, bad)


def test_the_view_of_an_imported_item_carries_no_key(qti3: tuple[ItemBank, Any, Path]) -> None:
    bank, _, _ = qti3
    for item in bank.items:
        view = _view(bank, item.item_id)
        text = json.dumps(view)
        assert not KEY_FIELD.search(text), (item.item_id, KEY_FIELD.search(text))
        assert view["kind"] == item.kind and len(view["responses"]) == len(item.responses or [])
        assert all(f'data-response="{r["id"]}"' in view["stem"] for r in view["responses"])
    assert "two hundred kilometres" in _view(bank, "river-1")["passage"]


def test_simulated_students_reach_every_category(qti3: tuple[ItemBank, Any, Path]) -> None:
    """A simulated tablet answers an imported item from its view; strong students earn the top
    score, weak ones the bottom (the demo's tablets answer imported banks this way)."""
    bank, _, _ = qti3
    rng = np.random.default_rng(4)
    for item in bank.items:
        view = _view(bank, item.item_id)
        shown = {r["id"]: [(o["id"], o["text"]) for o in r["options"] or []] for r in view["responses"]}
        top = len(item.score_values or []) - 1
        strong = [score_choice(item, simulated_answer(bank, item.item_id, 6.0, None, rng, shown), SECRET, 1).score
                  for _ in range(30)]
        weak = [score_choice(item, simulated_answer(bank, item.item_id, -6.0, None, rng, shown), SECRET, 1).score
                for _ in range(30)]
        assert np.mean(strong) > top - 0.3 and np.mean(weak) < 0.3, item.item_id


def test_qti_21_and_22_items_and_every_refusal_by_name(tmp_path: Path) -> None:
    bank, report = import_bank([DATA / "qti21", DATA / "qti22"], tmp_path / "b.json")
    assert bank is not None
    assert {r["item_id"]: (r["kind"], r["categories"]) for r in report.imported} == {
        "tri-21": ("choice", 2), "word-22": ("text", 3), "pi-22": ("numeric", 2), "fox-21": ("choice", 2)}
    # QTI 2's shared passage: an XHTML object, imported once as the item's stimulus
    fox = bank.item("fox-21")
    assert fox.attributes == {"passage": "passage"} and "lazy dog" in bank.stimuli["passage"]
    assert "The passage" not in (fox.stem or "")
    assert {r["item_id"]: r["reason"] for r in report.refused} == {
        "lost-21": "missing media file images/gone.png",
        "survey-21": "an item with no scoring (no responseProcessing)",
        "tmpl-21": "a template-driven item (its content changes per student) cannot be calibrated as one item",
        "tri-21": "duplicate item id tri-21 (already imported from qti21:choice-object.xml); rename one"}
    tri = bank.item("tri-21")
    assert tri.metadata is not None and tri.metadata["qti.version"] == "2.1"
    assert '<img src="media/01-qti21/images/triangle.png"' in (tri.stem or "")
    assert 'alt="A red triangle"' in (tri.stem or "")  # QTI 2's object: its content is the alternative text
    assert (tmp_path / "b.media" / "01-qti21" / "images" / "triangle.png").exists()
    word = bank.item("word-22")
    assert word.score_values == [0.0, 1.0, 2.0]
    assert [score_choice(word, t, SECRET, 1).score for t in ("COLD", "cool", "warm")] == [2, 1, 0]
    pi = bank.item("pi-22")  # relative tolerance 0.5%
    assert [score_choice(pi, x, SECRET, 1).score for x in (3.14, 3.15, 3.16, 3.12)] == [1, 1, 0, 0]


@pytest.mark.parametrize(("body", "reason"), [
    ('<orderInteraction responseIdentifier="RESPONSE"><simpleChoice identifier="A">a</simpleChoice>'
     "</orderInteraction>", "an order interaction cannot be scored adaptively"),
    ('<matchInteraction responseIdentifier="RESPONSE"/>', "a match interaction cannot be scored adaptively"),
    ('<gapMatchInteraction responseIdentifier="RESPONSE"/>', "a gap match interaction cannot be scored adaptively"),
    ('<graphicOrderInteraction responseIdentifier="RESPONSE"/>', "a graphic order interaction cannot be scored"),
    ('<sliderInteraction responseIdentifier="RESPONSE" lowerBound="0" upperBound="10"/>',
     "a slider interaction cannot be scored adaptively"),
    ('<extendedTextInteraction responseIdentifier="RESPONSE"/>', "an extended text interaction cannot be scored"),
    ('<uploadInteraction responseIdentifier="RESPONSE"/>', "an upload interaction cannot be scored adaptively"),
    ('<drawingInteraction responseIdentifier="RESPONSE"/>', "a drawing interaction cannot be scored adaptively"),
    ("<p>No interaction at all.</p>", "the item has no interaction this engine can score"),
])
def test_an_interaction_the_engine_cannot_score_is_refused_by_name(tmp_path: Path, body: str, reason: str) -> None:
    xml = f"""<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" identifier="x" title="x"
        adaptive="false" timeDependent="false">
      <responseDeclaration identifier="RESPONSE" cardinality="ordered" baseType="identifier"/>
      <itemBody>{body}</itemBody>
      <responseProcessing template="http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct"/>
    </assessmentItem>"""
    (tmp_path / "x.xml").write_text(xml)
    bank, report = import_bank([tmp_path / "x.xml"], tmp_path / "out.json")
    assert bank is None and not (tmp_path / "out.json").exists()
    assert len(report.refused) == 1 and report.refused[0]["reason"].startswith(reason)


def test_custom_processing_outside_the_known_shapes_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "items"
    shutil.copytree(DATA / "qti22", folder)
    text = (folder / "numeric-relative.xml").read_text()
    (folder / "numeric-relative.xml").write_text(text.replace("<responseIf>", "<responseIf><gt><variable "
                                                              'identifier="RESPONSE"/><baseValue baseType="float">3'
                                                              "</baseValue></gt>").replace("<equal", "<!--<equal")
                                                 .replace("</equal>", "</equal>-->"))
    _, report = import_bank([folder], tmp_path / "b.json")
    assert [r["reason"] for r in report.refused] == [
        "custom response processing: a condition <gt> is not one this engine scores"]


def test_too_many_score_values_are_refused(tmp_path: Path) -> None:
    entries = "".join(f'<mapEntry mapKey="o{k}" mappedValue="{k}"/>' for k in range(7))
    choices = "".join(f'<simpleChoice identifier="o{k}">{k}</simpleChoice>' for k in range(7))
    (tmp_path / "many.xml").write_text(f"""<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1"
        identifier="many" title="many" adaptive="false" timeDependent="false">
      <responseDeclaration identifier="RESPONSE" cardinality="single" baseType="identifier">
        <mapping defaultValue="0">{entries}</mapping></responseDeclaration>
      <itemBody><choiceInteraction responseIdentifier="RESPONSE" maxChoices="1">{choices}</choiceInteraction></itemBody>
      <responseProcessing template="http://www.imsglobal.org/question/qti_v2p1/rptemplates/map_response"/>
    </assessmentItem>""")
    _, report = import_bank([tmp_path / "many.xml"], tmp_path / "b.json")
    assert report.refused[0]["reason"].startswith("its scoring reaches 7 distinct scores (at most 6")


def test_parameters_make_items_operational_and_a_wrong_row_is_named(tmp_path: Path) -> None:
    params = tmp_path / "params.csv"
    params.write_text("item_id,model,a,b,c,b1,b2\ngeo-area,3PL,1.2,-0.5,0.2,,\nprimes-partial,GPCM,0.9,,,-0.4,0.6\n"
                      "verb,2PL,1.1,0.3,,,\nhalf,GRM,1,,,0.1,0.2\nnot-there,2PL,1,0,,,\n")
    bank, report = import_bank([DATA / "qti3"], tmp_path / "b.json", parameters=params)
    assert bank is not None and bank.model == "3PL"
    geo, partial, verb = bank.item("geo-area"), bank.item("primes-partial"), bank.item("verb")
    assert (geo.status, geo.a, geo.b, geo.c) == ("operational", 1.2, -0.5, 0.2)
    assert (partial.status, partial.model, partial.thresholds) == ("operational", "GPCM", [-0.4, 0.6])
    assert verb.status == "operational" and bank.item("capital").status == "pretest"
    refused = {r["item_id"]: r["reason"] for r in report.refused}
    assert refused["half"] == "item half: 2 thresholds for 2 score categories"
    assert refused["not-there"] == "parameters for an item that is not imported"
    # the bank loads and a test can start on it
    assert ItemBank.load(tmp_path / "b.json").item("geo-area").status == "operational"


def test_served_media_become_signed_links(qti3: tuple[ItemBank, Any, Path]) -> None:
    """The API replaces each ``src="media/<path>"`` of the item, its options and its passage by a
    link to the bank's media (S3MediaLinks signs it for 15 minutes)."""
    from irtcat.domain.api import SessionView, link_media

    bank, _, _ = qti3
    for item_id, where in (("geo-area", "stem"), ("river-1", "passage")):
        live = bank.model_copy(update={"items": [it.model_copy(update={"status": "operational"})
                                                 for it in bank.items]})
        state = new_session("sess-1", "u1", TestPolicy(test_id="t"), live, None).model_copy(
            update={"served": [ServedItem(seq=1, item_id=item_id)]})
        view = state.view(live)
        assert isinstance(view, SessionView) and view.bank_id == bank.bank_id
        linked = link_media(view, lambda bank_id, path: f"https://signed.example/{bank_id}/{path}?sig=1&x=2")
        html = getattr(linked.item, where)
        assert 'src="media/' not in html and f"https://signed.example/{bank.bank_id}/media/" in html
        assert "?sig=1&amp;x=2" in html  # escaped inside the attribute
