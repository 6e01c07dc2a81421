"""The tablet app on imported items, in a real browser: a test of the sample QTI 3 package
(a picture, a formula, checkboxes, a typed word, a number, an inline choice, two blanks, a
passage) answered through the page's own widgets; the picture loads through its signed link and
the formula is laid out as MathML (screenshot checks); no reply carries a key. An accommodated
student's timed test gets the extended limit, and the read-aloud button speaks the item."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..unit.test_import_qti import KEY_FIELD  # what would carry a key in a reply
from .test_tablet import ARTIFACTS, PASSWORD, browser, chromium  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.integration
DATA = Path(__file__).parent.parent / "data" / "qti"
# what a student who knows the answers types into each typed blank (by item)
TYPED = {"capital": ["Paris"], "half": ["0.5"], "blanks": ["12", "dozen"]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from irtcat.adapters.aws import DynamoStudents, S3BankStore
    from irtcat.demo.run import load_imported_bank, settings_of
    from irtcat.domain.policy import StoppingPolicy, TestDefinition, TestPolicy
    from irtcat.domain.student import Accommodations
    from irtcat.emulator.runtime import LocalRuntime
    from irtcat.importer.build import import_bank

    tmp = tmp_path_factory.mktemp("tablet-imported")
    bank, _ = import_bank([DATA / "qti3"], tmp / "bank.json", bank_id="imported",
                          parameters=DATA / "qti3-parameters.csv")
    assert bank is not None
    rt = LocalRuntime.up()
    rt.start_api(port=0)
    load_imported_bank(rt, tmp / "bank.json")
    S3BankStore(settings_of(rt)).put_test(TestDefinition(
        test_id="imported-timed", bank_id="imported",
        policy=TestPolicy(sympson_hetter=False, stopping=StoppingPolicy(max_items=7, min_items=7,
                                                                        time_limit_seconds=20))))
    accounts = rt.accounts()
    for name in ("reader-1", "reader-2"):
        accounts.provision(name, PASSWORD)
    DynamoStudents(settings_of(rt)).set_accommodations("reader-2", "*", Accommodations(
        extended_time=1.5, text_to_speech=True, large_font=True))
    yield rt
    rt.down()


def _start(page: Any, url: str, student: str, test: str = "demo-math") -> None:
    page.goto(url)
    page.fill("#student", student)
    page.fill("#password", PASSWORD)
    page.fill("#test", test)
    page.click("text=Start")
    page.wait_for_selector("#item:not([hidden]), #result:not([hidden])", timeout=60_000)


def _red_share(png: bytes) -> float:
    from PIL import Image

    pixels = list(Image.open(io.BytesIO(png)).convert("RGB").getdata())
    return sum(1 for r, g, b in pixels if r > 150 and g < 90 and b < 90) / len(pixels)


def test_a_student_takes_a_test_on_imported_items(stack: Any, browser: Any) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    replies: list[str] = []
    page.on("response", lambda r: replies.append(r.text()) if "/sessions" in r.url and r.status < 300 else None)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _start(page, stack.api_url + "/", "reader-1")
    seen: dict[str, str] = {}
    while page.is_visible("#item"):
        item_id = page.evaluate("() => state.session.item.item_id")
        seen[item_id] = page.evaluate("() => state.session.item.kind")
        if item_id == "geo-area":  # the picture came through its signed link and shows
            image = page.locator("#stem img")
            assert page.evaluate("() => document.querySelector('#stem img').naturalWidth") == 40
            assert "X-Amz-Signature" in (image.get_attribute("src") or "")
            assert image.get_attribute("alt") == "A right triangle with base 8 cm and height 5 cm"
            assert _red_share(image.screenshot()) > 0.8
            page.screenshot(path=str(ARTIFACTS / "tablet-imported-image.png"))
        if item_id == "alg-formula":  # MathML laid out: the exponent sits above the base
            top = page.evaluate("() => [...document.querySelectorAll('#stem msup > *')].map("
                                "e => e.getBoundingClientRect().top)")
            assert len(top) == 2 and top[1] < top[0] - 2, top
            page.screenshot(path=str(ARTIFACTS / "tablet-imported-formula.png"))
        if page.locator("#stem input[type=checkbox]").count():
            page.locator("#stem input[type=checkbox]").first.check()
            page.screenshot(path=str(ARTIFACTS / "tablet-imported-checkboxes.png"))
            page.click("#submit-answer")
        elif page.locator("#stem select").count():
            page.locator("#stem select").select_option(index=2)
            page.click("#submit-answer")
        elif page.locator("#stem input.blank").count():
            for box, text in zip(page.locator("#stem input.blank").all(), TYPED[item_id], strict=True):
                box.fill(text)
            page.click("#submit-answer")
        else:
            page.keyboard.press("1")
        page.wait_for_selector("#item", state="hidden", timeout=10_000)
        page.wait_for_selector("#item:not([hidden]), #result:not([hidden])", timeout=60_000)
    assert page.is_visible("#result") and not errors, errors
    # every operational item (7) and the two pretest ones were served, each with its own widget
    assert set(seen) == {"geo-area", "alg-formula", "primes", "primes-partial", "capital", "half", "verb",
                         "blanks", "river-1"}
    assert "You answered every question of this test." in (page.text_content("#score-detail") or "")
    leaks = [KEY_FIELD.search(r).group(0) for r in replies if KEY_FIELD.search(r)]  # type: ignore[union-attr]
    assert replies and not leaks, leaks


def test_an_accommodated_student_gets_more_time_and_the_item_read_aloud(stack: Any, browser: Any) -> None:  # noqa: F811
    page = browser.new_page()
    # the browser's speech synthesis, recorded instead of spoken
    page.add_init_script("window.__spoken = []; window.speechSynthesis.speak = (u) => window.__spoken.push(u.text);")
    _start(page, stack.api_url + "/", "reader-2", "imported-timed")
    view = page.evaluate("() => state.session")
    assert view["accommodations"] == {"extended_time": 1.5, "text_to_speech": True, "large_font": True}
    assert 20 < view["remaining_seconds"] <= 30  # 20 s, extended by half
    assert re.match(r"Time left 0:(2[1-9]|30)", page.text_content("#timer") or "")
    assert page.evaluate("() => document.body.classList.contains('large-font')")
    page.click("#speak")
    spoken = page.evaluate("() => window.__spoken")
    stem = (page.text_content("#stem") or "").strip()
    assert len(spoken) == 1 and stem[:20] in spoken[0]
    page.screenshot(path=str(ARTIFACTS / "tablet-read-aloud.png"))
    assert json.dumps(view).count("X-Amz-Signature") == json.dumps(view).count("<img")
