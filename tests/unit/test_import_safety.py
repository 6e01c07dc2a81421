"""Uploaded files cannot hurt the server: an XML bomb, an external entity, a zip that writes
outside its folder, a zip bomb, media paths leaving the package, an SVG or HTML with script or
event handlers are each refused with a reason or sanitised, and nothing is written outside the
output folder."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from irtcat.importer import safety
from irtcat.importer.build import import_bank
from irtcat.importer.content import sanitise
from irtcat.importer.safety import Package, Refused, check_svg, parse_xml

ITEM = """<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" identifier="{id}" title="t"
    adaptive="false" timeDependent="false">
  <responseDeclaration identifier="RESPONSE" cardinality="single" baseType="identifier">
    <correctResponse><value>A</value></correctResponse></responseDeclaration>
  <itemBody>{body}<choiceInteraction responseIdentifier="RESPONSE" maxChoices="1">
    <simpleChoice identifier="A">yes</simpleChoice><simpleChoice identifier="B">no</simpleChoice>
  </choiceInteraction></itemBody>
  <responseProcessing template="http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct"/>
</assessmentItem>"""


def _item(item_id: str, body: str = "<p>Pick one.</p>") -> str:
    return ITEM.format(id=item_id, body=body)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_an_xml_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lol = "".join(f'<!ENTITY l{k} "{f"&l{k - 1};" * 10}">' for k in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{lol}]><r>&l9;</r>'
    with pytest.raises(Refused, match="XML with a DTD or entity declarations is refused"):
        parse_xml(bomb.encode(), "bomb.xml")
    (tmp_path / "bomb.xml").write_text(bomb)
    bank, report = import_bank([tmp_path / "bomb.xml"], tmp_path / "out" / "b.json")
    assert bank is None and "DTD or entity declarations" in report.refused[0]["reason"]


def test_an_external_entity_is_never_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY s SYSTEM "file://{secret}">]>'
           + _item("xxe", "<p>&s;</p>"))
    (tmp_path / "xxe.xml").write_text(xxe)
    bank, report = import_bank([tmp_path / "xxe.xml"], tmp_path / "out" / "b.json")
    assert bank is None and "DTD or entity declarations" in report.refused[0]["reason"]
    assert not (tmp_path / "out").exists() or "TOP-SECRET" not in "".join(
        p.read_text() for p in _files(tmp_path / "out"))


def test_a_zip_that_writes_outside_its_folder_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "slip.zip"
    with zipfile.ZipFile(package, "w") as z:
        z.writestr("item.xml", _item("slip", '<p><img src="pic.png" alt="p"/></p>'))
        z.writestr("pic.png", b"\x89PNG")
        z.writestr("../../escaped.txt", b"pwned")
    out = tmp_path / "out"
    out.mkdir()
    before = _files(tmp_path)
    bank, report = import_bank([package], out / "b.json")
    assert bank is None and report.refused == [{"item_id": None, "source": "slip.zip",
                                                "reason": "package member '../../escaped.txt': a path that leaves "
                                                          "the package"}]
    assert _files(tmp_path) == before  # nothing written anywhere
    for name in ("/etc/passwd", "C:/x.txt", "a\\..\\..\\b"):
        with pytest.raises(Refused, match="absolute path"):
            safety.safe_member(name)


def test_a_zip_bomb_is_stopped_on_what_it_inflates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safety, "MAX_MEMBER_BYTES", 2**20)
    package = tmp_path / "bomb.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("item.xml", _item("big", '<p><img src="big.png" alt="big"/></p>'))
        z.writestr("big.png", b"\0" * (8 * 2**20))  # 8 MiB of zeros deflate to a few KiB
    assert package.stat().st_size < 64 * 1024
    bank, report = import_bank([package], tmp_path / "out" / "b.json")
    assert bank is None and report.refused[0]["reason"] == "big.png: inflates past 1 MiB (a zip bomb?)"
    monkeypatch.setattr(safety, "MAX_TOTAL_BYTES", 2**20)
    monkeypatch.setattr(safety, "MAX_MEMBER_BYTES", 50 * 2**20)
    with pytest.raises(Refused, match=r"bomb.zip: inflates past 1 MiB in all"):
        Package(package).read("big.png")


@pytest.mark.parametrize("src", ["../outside.png", "/etc/passwd", "http://evil.example/x.png",
                                 "javascript:alert(1)", "file:///etc/passwd", "data:image/png;base64,AAAA"])
def test_media_paths_leaving_the_package_are_refused(tmp_path: Path, src: str) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (tmp_path / "outside.png").write_bytes(b"\x89PNG")
    (folder / "item.xml").write_text(_item("m", f'<p><img src="{src}" alt="x"/></p>'))
    bank, report = import_bank([folder], tmp_path / "out" / "b.json")
    assert bank is None
    reason = report.refused[0]["reason"]
    assert "only files inside the package" in reason or "leaves the package" in reason or "absolute" in reason


@pytest.mark.parametrize(("svg", "reason"), [
    ('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "an SVG with <script>"),
    ('<svg xmlns="http://www.w3.org/2000/svg"><rect onload="alert(1)"/></svg>', "event handler (onload)"),
    ('<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><p>x</p></foreignObject></svg>', "<foreignobject>"),
    ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
     '<image xlink:href="http://evil.example/t.png"/></svg>', "links to 'http://evil.example/t.png'"),
])
def test_an_svg_that_could_run_or_fetch_is_refused(tmp_path: Path, svg: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_svg(svg.encode(), "pic.svg")
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "pic.svg").write_text(svg)
    (folder / "item.xml").write_text(_item("svg", '<p><img src="pic.svg" alt="a picture"/></p>'))
    bank, report = import_bank([folder], tmp_path / "out" / "b.json")
    assert bank is None and "pic.svg: an SVG" in report.refused[0]["reason"]
    assert not (tmp_path / "out").exists()


def test_html_with_scripts_and_handlers_is_sanitised() -> None:
    dirty = ('<p onmouseover="x()" style="color:red">Hi<script>alert(1)</script><iframe src="//e"></iframe>'
             '<img src="media/a.png" alt="a" onerror="x()"><img src="https://evil.example/t.gif">'
             '<a href="javascript:alert(1)">link</a><form><input name="q"></form>'
             '<math><mi>x</mi><annotation-xml encoding="text/html"><img src=x onerror=alert(1)></annotation-xml>'
             '</math><style>body{display:none}</style></p>')
    clean = sanitise(dirty)
    for bad in ("script", "onmouseover", "onerror", "style", "iframe", "evil.example", "javascript", "<form",
                "<input", "annotation-xml", "alert"):
        assert bad not in clean, bad
    assert '<img src="media/a.png" alt="a">' in clean and "<math><mi>x</mi>" in clean


def test_an_item_whose_stem_carries_a_script_comes_in_without_it(tmp_path: Path) -> None:
    (tmp_path / "item.xml").write_text(_item("s", '<p onclick="go()">Hello <script>steal()</script>world</p>'))
    bank, _ = import_bank([tmp_path / "item.xml"], tmp_path / "b.json")
    assert bank is not None and bank.items[0].stem == '<p>Hello world</p><div data-response="RESPONSE"></div>'
