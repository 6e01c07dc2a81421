"""The irtcat command line: generate, simulate, exposure; clear one-line errors on bad input."""

import json
from pathlib import Path

import pytest
from irtcat.cli.main import main
from irtcat.domain.bank import ItemBank


@pytest.fixture()
def bank_file(tmp_path):
    path = tmp_path / "bank.json"
    assert main(["bank", "generate", "--items", "200", "--pretest", "5", "--content-areas", "a,b",
                 "--seed", "3", "--out", str(path)]) == 0
    return path


def test_bank_generate_writes_the_documented_format(bank_file):
    bank = ItemBank.load(bank_file)
    assert len(bank.items) == 205 and bank.model == "3PL"
    assert sum(i.status == "pretest" for i in bank.items) == 5
    first = bank.items[0]
    assert first.stem and first.options and first.key is not None
    raw = json.loads(bank_file.read_text())
    assert set(raw) >= {"bank_id", "version", "model", "items"}


def test_simulate_json_summary(bank_file, capsys, tmp_path):
    assert main(["simulate", "--bank", str(bank_file), "--examinees", "200", "--seed", "1", "--json",
                 "--plots", str(tmp_path / "plots")]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("examinees", "mean_length", "bias", "rmse", "max_exposure", "seconds"):
        assert key in out
    assert out["examinees"] == 200 and out["rmse"] < 0.45
    assert all((tmp_path / "plots" / f).stat().st_size > 0
               for f in ("trajectories.png", "exposure.png", "conditional_rmse.png"))


def test_simulate_with_thetas_file_and_policy(bank_file, capsys, tmp_path):
    thetas = tmp_path / "thetas.txt"
    thetas.write_text("-1.0\n# a comment\n0.0\n1.5\n")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"estimator": "WLE", "stopping": {"max_items": 10, "se_threshold": None}}))
    assert main(["simulate", "--bank", str(bank_file), "--thetas", str(thetas), "--policy", str(policy),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["examinees"] == 3 and out["mean_length"] == 10


def test_responses_generate_long_csv(bank_file, tmp_path):
    out = tmp_path / "r.csv"
    assert main(["responses", "generate", "--bank", str(bank_file), "--examinees", "20",
                 "--items-per-person", "15", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "student_id,item_id,response" and len(lines) == 1 + 20 * 15


def test_exposure_command_writes_k(bank_file, tmp_path, capsys):
    out = tmp_path / "sh.json"
    assert main(["exposure", "--bank", str(bank_file), "--target", "0.3", "--examinees", "300",
                 "--iterations", "3", "--out", str(out), "--json"]) == 0
    bank = ItemBank.load(out)
    assert any(i.exposure_k < 1 for i in bank.items)


@pytest.mark.parametrize(
    "content,expected",
    [
        (None, "cannot read bank"),
        ("{not json", "invalid bank"),
        ('{"bank_id": "x", "version": 1, "items": [{"item_id": "a", "a": -1}]}', "invalid bank"),
        ('{"bank_id": "x", "version": 1, "items": [{"item_id": "a"}, {"item_id": "a"}]}', "duplicate"),
    ],
)
def test_bad_bank_gives_one_line_reason(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    assert main(["simulate", "--bank", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("irtcat: error:") and expected in err and "\n" not in err


def test_bad_thetas_and_policy(bank_file, tmp_path, capsys):
    thetas = tmp_path / "t.txt"
    thetas.write_text("0.5\nabc\n")
    assert main(["simulate", "--bank", str(bank_file), "--thetas", str(thetas)]) == 2
    assert "not a number" in capsys.readouterr().err
    policy = tmp_path / "p.json"
    policy.write_text('{"estimator": "XYZ"}')
    assert main(["simulate", "--bank", str(bank_file), "--policy", str(policy)]) == 2
    assert "invalid policy" in capsys.readouterr().err


def test_calibrate_round_trip_and_online_calibration(tmp_path, capsys):
    bank = tmp_path / "bank.json"
    assert main(["bank", "generate", "--items", "40", "--pretest", "4", "--model", "2PL", "--no-content",
                 "--seed", "5", "--out", str(bank)]) == 0
    resp = tmp_path / "r.csv"
    assert main(["responses", "generate", "--bank", str(bank), "--examinees", "1500", "--seed", "6",
                 "--out", str(resp)]) == 0
    out = tmp_path / "new.json"
    capsys.readouterr()
    assert main(["calibrate", "--responses", str(resp), "--model", "2PL", "--bank", str(bank),
                 "--fixed", "operational", "--promote-n", "1000", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("model", "iterations", "converged", "log_likelihood", "n_items", "n_responses", "seconds"):
        assert key in summary
    assert summary["n_estimated"] == 4 and summary["converged"]
    new = ItemBank.load(out)
    assert new.version == 2
    old = {i.item_id: i for i in ItemBank.load(bank).items}
    for item in new.items:
        if old[item.item_id].status == "operational":
            assert (item.a, item.b) == (old[item.item_id].a, old[item.item_id].b)
        else:
            assert item.se_b is not None and item.n_responses == 1500 and item.calibration_note
    assert len(summary["promoted"]) >= 3
    assert summary["se_method"].startswith("observed information") and summary["priors"]["float_log_a"]


def test_calibrate_priors_none_is_plain_mml_and_a_priors_file_is_checked(tmp_path, capsys):
    from irtcat.adapters.calibration_io import read_long_responses, to_response_data
    from irtcat.irt.calibration import Priors, calibrate

    bank = tmp_path / "bank.json"
    assert main(["bank", "generate", "--items", "12", "--model", "2PL", "--no-content", "--seed", "7",
                 "--out", str(bank)]) == 0
    resp = tmp_path / "r.csv"
    assert main(["responses", "generate", "--bank", str(bank), "--examinees", "800", "--seed", "8",
                 "--out", str(resp)]) == 0
    capsys.readouterr()
    out = tmp_path / "plain.json"
    assert main(["calibrate", "--responses", str(resp), "--model", "2PL", "--priors", "none",
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["priors"] == Priors().describe()
    students, items, x = read_long_responses(resp)
    ids = sorted(set(items))
    plain = calibrate(to_response_data(students, items, x, ids), "2PL", priors=Priors())
    written = {it.item_id: it for it in ItemBank.load(out).items}
    assert summary["log_likelihood"] == pytest.approx(plain.log_likelihood, rel=1e-9)
    assert [written[i].b for i in ids] == pytest.approx(plain.b, abs=1e-5)
    assert ItemBank.load(out).calibration.priors == Priors().describe()  # type: ignore[union-attr]
    settings = tmp_path / "priors.json"
    settings.write_text('{"b": [0, 2]}')
    assert main(["calibrate", "--responses", str(resp), "--model", "2PL", "--priors", str(settings),
                 "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["priors"]["b"] == [0.0, 2.0]
    for text, words in (('{"b": [0, -1]}', "sigma must be > 0"), ("[1, 2]", "must hold a JSON object"),
                        ("{", "is not JSON")):
        settings.write_text(text)
        assert main(["calibrate", "--responses", str(resp), "--priors", str(settings), "--out", str(out)]) == 2
        assert words in capsys.readouterr().err
    assert main(["calibrate", "--responses", str(resp), "--priors", str(tmp_path / "nope.json"),
                 "--out", str(out)]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    "rows,expected",
    [
        ("", "empty file"),
        ("student_id,item_id,response\n", "no responses"),
        ("student_id,item_id,response\ns1,i00000,1\ns1,i00001,2\n", "line 3"),
        ("student_id,item_id,response\ns1,i00000,1\ns2,i00000,0\ns1,i00000,0\n", "lines 2 and 4"),
        ("student_id,item_id,response\ns1,nope,1\n", "not in the bank: nope"),
    ],
)
def test_calibrate_bad_input(tmp_path, capsys, rows, expected):
    bank = tmp_path / "bank.json"
    main(["bank", "generate", "--items", "5", "--no-content", "--out", str(bank)])
    resp = tmp_path / "r.csv"
    resp.write_text(rows)
    assert main(["calibrate", "--responses", str(resp), "--bank", str(bank), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("irtcat: error:") and expected in err


def test_calibrate_reads_parquet(tmp_path, capsys):
    import duckdb

    csv_path = tmp_path / "r.csv"
    bank = tmp_path / "bank.json"
    main(["bank", "generate", "--items", "20", "--model", "2PL", "--no-content", "--out", str(bank)])
    main(["responses", "generate", "--bank", str(bank), "--examinees", "800", "--out", str(csv_path)])
    pq = tmp_path / "r.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv_auto('{csv_path}')) TO '{pq}' (FORMAT PARQUET)")
    capsys.readouterr()
    assert main(["calibrate", "--responses", str(pq), "--model", "2PL", "--out", str(tmp_path / "c.json"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_responses"] == 16000


def test_local_calibrate_rejects_bad_options_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from irtcat.cli.main import main

    assert main(["local", "calibrate", "--shards", "0", "--data-dir", "/nonexistent-irtcat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("irtcat: error: --shards:") and err.count("\n") == 1
    assert main(["local", "calibrate", "--promote-se", "-1", "--data-dir", "/nonexistent-irtcat"]) == 2
    assert capsys.readouterr().err.startswith("irtcat: error: --promote-se:")



def test_every_command_fails_the_same_way(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One error path: exit status 2 and one line ``irtcat: error: reason``, the local commands
    included; an event file that does not parse is such an error, not a traceback."""
    from irtcat.cli.main import main

    bad_event = tmp_path / "e.json"
    bad_event.write_text("{")
    for argv in (["local", "demo", "--students", "0"], ["local", "demo", "--duplicates", "1"],
                 ["local", "invoke", "UpdateThetaFunction", "--event", str(bad_event), "--data-dir", str(tmp_path)],
                 ["bank", "generate", "--items", "0", "--out", str(tmp_path / "b.json")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("irtcat: error: ") and err.count("\n") == 1, (argv, err)


def test_local_up_overrides_the_templates_pipe_parameters() -> None:
    from irtcat.cli.local import _overrides
    from irtcat.cli.main import build_parser

    args = build_parser().parse_args(["local", "up", "--shards", "2", "--batch-size", "5", "--parallelization", "3"])
    assert _overrides(args) == {"StreamShardCount": "2", "PipeBatchSize": "5", "PipeParallelization": "3"}
    assert _overrides(build_parser().parse_args(["local", "up"])) == {}
    with pytest.raises(SystemExit):  # AWS allows 1-10: anything else is refused, not clamped
        build_parser().parse_args(["local", "up", "--parallelization", "11"])
