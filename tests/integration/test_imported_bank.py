"""An imported bank through the whole local pipeline: the sample QTI 3 package (an image, a
formula, checkboxes, a typed word, a number, an inline choice, two blanks, a passage) with
parameters for seven of its items; simulated tablets answer from what the API shows them (version
3 answers for lists and blanks), nothing is lost, its media reach the bank bucket, and no key,
mapping or tolerance leaves the server."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from irtcat.demo.run import load_imported_bank, run_demo
from irtcat.emulator.runtime import LocalRuntime
from irtcat.importer.build import import_bank

from ..unit.test_import_qti import KEY_FIELD  # what would carry a key in a reply
from .targets import stream_records

pytestmark = pytest.mark.integration
DATA = Path(__file__).parent.parent / "data" / "qti"


@pytest.fixture(scope="module")
def imported_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, dict[str, Any], Path]]:
    tmp = tmp_path_factory.mktemp("imported")
    package = tmp / "sample.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted((DATA / "qti3").rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(DATA / "qti3").as_posix())
    bank, _ = import_bank([package], tmp / "bank.json", bank_id="imported",
                          parameters=DATA / "qti3-parameters.csv")
    assert bank is not None
    rt = LocalRuntime.up(parameters={"StreamShardCount": "1", "PipeBatchSize": "10"})
    try:
        yield rt, run_demo(students=6, seed=3, report_dir=tmp / "report", rt=rt, bank_path=tmp / "bank.json"), tmp
    finally:
        rt.down()


def test_tablets_take_tests_on_imported_items_and_nothing_leaks(
        imported_demo: tuple[LocalRuntime, dict[str, Any], Path]) -> None:
    rt, summary, _ = imported_demo
    assert summary["answers_lost"] == 0 and summary["executions_failed"] == 0 and not summary["tablet_errors"]
    assert summary["sessions_finished"] == 6 and summary["mean_test_length"] == 7.0
    outputs = rt.stack.outputs()
    s3 = boto3.client("s3", region_name="us-east-1")
    history_bucket = outputs["HistoryBucketName"]
    keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=history_bucket)
            for o in p.get("Contents", [])]
    history = [s3.get_object(Bucket=history_bucket, Key=k)["Body"].read().decode() for k in keys
               if k.startswith("history/")]
    answers = [json.loads(line) for text in history for line in text.splitlines() if '"record_type":"answer"' in line]
    applied = [a for a in answers if a["outcome"] == "applied"]
    # checkboxes and blanks travel as version 3 lists and objects, and are scored on the server
    assert any(a["choice"].startswith("[") for a in applied if a["item_id"] in ("primes", "primes-partial"))
    assert all(a["response"] in (0, 1, 2) for a in applied)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    state = [json.dumps(item) for page in ddb.get_paginator("scan").paginate(TableName=outputs["StateTableName"])
             for item in page["Items"]]
    stream = [r.decode("utf-8", "replace") for r in stream_records(outputs["AnswerStreamName"])]
    for where, texts in (("history", history), ("dynamodb", state), ("stream", stream)):
        leaks = [KEY_FIELD.search(t).group(0) for t in texts if KEY_FIELD.search(t)]  # type: ignore[union-attr]
        assert not leaks, (where, leaks[:3])
    # the bank's media were published with it, beside the bank version
    media = [o["Key"] for o in s3.list_objects_v2(Bucket=outputs["BankBucketName"],
                                                  Prefix="banks/imported/media/").get("Contents", [])]
    assert sorted(media) == ["banks/imported/media/media/shape.svg", "banks/imported/media/media/triangle.png"]


def test_a_bank_with_too_few_operational_items_is_refused_with_the_reason(tmp_path: Path) -> None:
    bank, _ = import_bank([DATA / "qti3"], tmp_path / "bank.json")  # no parameters: every item pretest
    assert bank is not None and {it.status for it in bank.items} == {"pretest"}
    with pytest.raises(ValueError, match=r"has 0 operational item\(s\): a test needs at least 5"):
        load_imported_bank(_NoStack(), tmp_path / "bank.json")  # type: ignore[arg-type]


class _NoStack:
    """Refused before any stack call: the bank is checked first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the stack was used ({name}) before the bank was checked")
