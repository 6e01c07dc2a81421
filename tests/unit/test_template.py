"""The SAM application: lint, state machine definition, handlers, least privilege, encryption."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from irtcat.emulator.template import expand_sam, load_template, parameter_defaults

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    return expand_sam(sam, {k: str(v) for k, v in parameter_defaults(sam).items()})


def test_cfn_lint_is_clean():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    run = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_sam_validate_lint_is_clean():
    local = ROOT / ".venv-sam" / "bin" / "sam"
    sam_cli = os.environ.get("IRTCAT_SAM") or (str(local) if local.exists() else shutil.which("sam"))
    assert sam_cli and Path(sam_cli).exists(), "SAM CLI not found: ./dev test installs it into .venv-sam"
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    run = subprocess.run([sam_cli, "validate", "--lint", "--template", str(TEMPLATE)],
                         capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is a valid SAM Template" in run.stdout + run.stderr


def test_checkov_security_scan_is_clean():
    """Security linter over the template: every failed check is fixed or justified (the
    function-wide skips in .checkov.yaml, resource ones inline in the template's Metadata)."""
    local = ROOT / ".venv-checkov" / "bin" / "checkov"
    checkov = os.environ.get("IRTCAT_CHECKOV") or (str(local) if local.exists() else shutil.which("checkov"))
    assert checkov and Path(checkov).exists(), "checkov not found: ./dev test installs it into .venv-checkov"
    run = subprocess.run([checkov, "--config-file", ".checkov.yaml", "-f", str(TEMPLATE)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Failed checks: 0" in run.stdout, run.stdout
    skipped = re.search(r"Skipped checks: (\d+)", run.stdout)
    inline = len(re.findall(r"^\s+- id: CKV_", TEMPLATE.read_text(), flags=re.M))
    assert skipped and int(skipped.group(1)) == inline, "every inline skip is used, and only those"


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        proc = state.get("ItemProcessor") or state.get("Iterator")
        if proc:
            found.update(_states(proc))
    return found


STATE_MACHINES = [("statemachines/answer.asl.json", "AnswerStateMachine"),
                  ("statemachines/calibration.asl.json", "CalibrationStateMachine")]


@pytest.mark.parametrize("path", [p for p, _ in STATE_MACHINES])
def test_state_machine_definition_is_valid_asl(path: str) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    text = (ROOT / path).read_text()
    AmazonStateLanguageParser.parse(re.sub(r"\$\{(\w+)\}", r"arn:aws:lambda:us-east-1:123456789012:function:\1", text))
    definition = json.loads(text)

    def check(graph: dict[str, Any]) -> None:
        states = graph["States"]
        assert graph["StartAt"] in states
        reachable, todo = set(), [graph["StartAt"]]
        while todo:
            name = todo.pop()
            if name in reachable:
                continue
            reachable.add(name)
            st = states[name]
            nexts = [st.get("Next"), st.get("Default")]
            nexts += [c["Next"] for c in st.get("Choices", [])] + [c["Next"] for c in st.get("Catch", [])]
            for n in filter(None, nexts):
                assert n in states, f"{name} -> unknown state {n}"
                todo.append(n)
            assert st.get("End") or st["Type"] in ("Choice", "Succeed", "Fail") or st.get("Next"), name
            if st["Type"] == "Map":
                check(st["ItemProcessor"])
        assert reachable == set(states), f"unreachable: {set(states) - reachable}"

    check(definition)


@pytest.mark.parametrize(("path", "logical_id"), STATE_MACHINES)
def test_every_task_resource_is_a_template_substitution(sam, path: str, logical_id: str) -> None:
    definition = json.loads((ROOT / path).read_text())
    subs = sam["Resources"][logical_id]["Properties"]["DefinitionSubstitutions"]
    tasks = [s for s in _states(definition).values() if s["Type"] == "Task"]
    assert tasks
    for task in tasks:
        m = re.fullmatch(r"\$\{(\w+)\}", task["Resource"])
        assert m and m.group(1) in subs, task["Resource"]
        target = subs[m.group(1)]["Fn::GetAtt"][0]
        assert sam["Resources"][target]["Type"] == "AWS::Serverless::Function"
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(definition)))
    assert used == set(subs), "substitutions and definition disagree"


def test_every_function_handler_resolves_to_an_importable_callable(sam):
    functions = {k: v for k, v in sam["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert len(functions) >= 8
    for logical_id, res in functions.items():
        props = res["Properties"]
        module, _, attr = props["Handler"].rpartition(".")
        path = ROOT / props["CodeUri"] / f"{module}.py"
        assert path.is_file(), f"{logical_id}: {path}"
        spec = importlib.util.spec_from_file_location(f"check_{logical_id}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert callable(getattr(mod, attr)), logical_id


def _statements(cfn: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for logical_id, res in cfn["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in res["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                out.append((logical_id, st))
    return out


DATA_PREFIXES = ("dynamodb:", "s3:", "kinesis:", "firehose:", "sqs:", "lambda:", "states:")


def test_least_privilege_no_wildcard_actions_on_data_resources(cfn):
    statements = _statements(cfn)
    assert statements
    for role, st in statements:
        if st.get("Effect") != "Allow":
            continue
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert "*" not in actions, role
        for action in actions:
            if isinstance(action, str) and action.startswith(DATA_PREFIXES):
                assert not action.endswith(":*"), f"{role}: {action}"
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                assert "*" not in resources, f"{role}: {action} on *"


def test_each_per_answer_function_reaches_only_what_it_needs(cfn):
    def actions(role: str) -> set[str]:
        acts: set[str] = set()
        for r, st in _statements(cfn):
            if r == role:
                a = st["Action"]
                acts.update(a if isinstance(a, list) else [a])
        return acts

    assert not any(a.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete", "firehose:"))
                   for a in actions("UpdateThetaFunctionRole"))
    # FinishSession reads the bank (items and response times for its checks), and writes nothing
    finish = actions("FinishSessionFunctionRole")
    assert not any(a.startswith(("dynamodb:", "firehose:", "s3:Put", "s3:Delete")) for a in finish)
    assert "s3:GetObject" in finish
    assert "dynamodb:PutItem" in actions("CommitStepFunctionRole")
    assert not any(a.startswith("dynamodb:") for a in actions("RecordOutcomeFunctionRole"))


def test_encryption_at_rest_everywhere(sam):
    res = sam["Resources"]
    assert res["StateTable"]["Properties"]["SSESpecification"]["SSEEnabled"] is True
    assert res["AnswerStream"]["Properties"]["StreamEncryption"]["EncryptionType"] == "KMS"
    assert res["PipeDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    assert res["HistoryDeliveryStream"]["Properties"]["DeliveryStreamEncryptionConfigurationInput"]
    for bucket in ("HistoryBucket", "BankBucket"):
        props = res[bucket]["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert all(props["PublicAccessBlockConfiguration"].values())
        policy = res[f"{bucket}Policy"]["Properties"]["PolicyDocument"]["Statement"][0]
        assert policy["Effect"] == "Deny" and policy["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_pipe_keeps_order_and_parks_failures(sam):
    pipe = sam["Resources"]["AnswerPipe"]["Properties"]
    k = pipe["SourceParameters"]["KinesisStreamParameters"]
    # batches in flight per shard: a parameter, one by default (a session's answers stay in order
    # either way: its partition key is its session id)
    assert k["ParallelizationFactor"] == {"Ref": "PipeParallelization"} and "DeadLetterConfig" in k
    assert sam["Parameters"]["PipeParallelization"]["Default"] == 1
    assert pipe["TargetParameters"]["StepFunctionStateMachineParameters"]["InvocationType"] == "REQUEST_RESPONSE"
    assert sam["Resources"]["AnswerStateMachine"]["Properties"]["Type"] == "EXPRESS"


def test_a_batchs_sessions_run_side_by_side_and_each_sessions_answers_in_order():
    """The Pipe's enrichment groups a batch by session; the answer machine maps over the
    sessions concurrently and over each session's answers one at a time."""
    asl = json.loads((ROOT / "statemachines/answer.asl.json").read_text())
    sessions = asl["States"][asl["StartAt"]]
    assert sessions["Type"] == "Map" and sessions["ItemsPath"] == "$" and sessions["MaxConcurrency"] != 1
    inner = sessions["ItemProcessor"]["States"][sessions["ItemProcessor"]["StartAt"]]
    assert inner["Type"] == "Map" and inner["ItemsPath"] == "$.records" and inner["MaxConcurrency"] == 1
    assert inner["ItemProcessor"]["StartAt"] == "UpdateTheta"


def test_calibration_runs_on_a_schedule_as_a_distributed_map_with_scipy_of_its_own(sam):
    sm = sam["Resources"]["CalibrationStateMachine"]["Properties"]
    assert sm["Type"] == "STANDARD"
    assert [e["Type"] for e in sm["Events"].values()] == ["ScheduleV2"]
    estep = json.loads((ROOT / "statemachines/calibration.asl.json").read_text())["States"]["EStep"]
    assert estep["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert estep["ItemReader"]["Resource"].endswith("s3:listObjectsV2")
    code = {v["Properties"]["CodeUri"]: v["Properties"]["Handler"] for k, v in sam["Resources"].items()
            if v["Type"] == "AWS::Serverless::Function" and k.startswith("Calibration")}
    steps = ("prepare", "e_step", "m_step", "finalize", "publish")
    assert code == {f"functions/calibration_{step}/": "app.handler" for step in steps}
    layers = {k: [r["Ref"] for r in v["Properties"].get("Layers", [])] for k, v in sam["Resources"].items()
              if v["Type"] == "AWS::Serverless::Function"}
    for fn, own in layers.items():  # scipy's layer for the calibration functions only
        assert ("ScipyLayer" in own) == fn.startswith("Calibration"), fn
    assert "scipy" in (ROOT / "shared/scipy.lock").read_text()


def test_layer_keeps_scipy_and_boto3_off_the_per_answer_path():
    reqs = (ROOT / "shared/requirements.txt").read_text().lower()
    assert "scipy" not in reqs.split("#")[0] and "boto3" not in [
        line.split(">")[0].split("=")[0].strip() for line in reqs.splitlines() if not line.startswith("#")]


def test_every_api_route_requires_a_cognito_token_and_the_pool_holds_no_pii(sam):
    api = next(r for r in sam["Resources"].values() if r["Type"] == "AWS::Serverless::HttpApi")
    auth = api["Properties"]["Auth"]
    jwt = auth["Authorizers"][auth["DefaultAuthorizer"]]["JwtConfiguration"]
    assert "${UserPool}" in jwt["issuer"]["Fn::Sub"] and jwt["audience"] == [{"Ref": "TabletClient"}]
    routes = [(name, ev) for name, r in sam["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
              for ev in (r["Properties"].get("Events") or {}).values() if ev["Type"] == "HttpApi"]
    assert len(routes) == 6
    for name, ev in routes:
        assert "Auth" not in ev["Properties"], f"{name}: a route must not override the default authorizer"
    pool = sam["Resources"]["UserPool"]["Properties"]
    assert "Schema" not in pool and "UsernameAttributes" not in pool and "AutoVerifiedAttributes" not in pool
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True


def _metric_names() -> set[str]:
    """The metric names the handlers emit (Powertools EMF, namespace irtcat)."""
    names: set[str] = set()
    for app in (ROOT / "functions").glob("*/app.py"):
        for m in re.finditer(r'add_metric\(name=f?"([^"]+)"', app.read_text()):
            names.add(m.group(1))
    outcomes = {"applied", "duplicate", "rejected"}
    expanded = {n.replace("{out.outcome}", o).replace("{out['outcome']}", o) for n in names for o in outcomes}
    return expanded


def test_the_operations_dashboard_shows_what_the_issue_of_operating_needs(sam):
    """The dashboard's body is valid JSON once substituted; its own metrics are ones the handlers
    emit; it covers answers/s, both iterator ages, execution duration and failures, throttles,
    the DLQ and quarantine."""
    body_template = sam["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", body_template))
    metrics = [m for w in body["widgets"] for m in w["properties"]["metrics"]]
    named = {(m[0], m[1]) for m in metrics if isinstance(m[0], str)}
    emitted = _metric_names()
    assert {name for ns, name in named if ns == "irtcat"} <= emitted
    for needed in [("irtcat", "Answers_applied"), ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds"),
                   ("AWS/Lambda", "IteratorAge"), ("AWS/States", "ExecutionTime"), ("AWS/States", "ExecutionsFailed"),
                   ("AWS/Lambda", "Throttles"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
                   ("irtcat", "Answers_quarantined_at_screen")]:
        assert needed in named, needed
    stats = {m[-1].get("stat") for m in metrics if isinstance(m[-1], dict)}
    assert {"p50", "p99"} <= stats


def test_alarms_watch_iterator_age_and_throttling(sam):
    alarms = {k: v["Properties"] for k, v in sam["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {p.get("MetricName") for p in alarms.values()} | {
        m["MetricStat"]["Metric"]["MetricName"]
        for p in alarms.values() for m in p.get("Metrics", []) if "MetricStat" in m}
    assert {"GetRecords.IteratorAgeMilliseconds", "IteratorAge", "Throttles", "WriteThrottleEvents",
            "ApproximateNumberOfMessagesVisible", "ExecutionsFailed"} <= watched
    throttled = {m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
                 for name in ("AnswerPathThrottleAlarm", "SessionApiThrottleAlarm")
                 for m in alarms[name]["Metrics"] if "MetricStat" in m}
    functions = {k for k, v in sam["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
                 and not k.startswith("Calibration")}
    assert functions <= throttled
    # CloudWatch: an alarm on metric math reads at most 10 metrics (alarm-limits, a hard limit)
    assert all(sum("MetricStat" in m for m in a.get("Metrics", [])) <= 10 for a in alarms.values())
    for alarm in alarms.values():  # what to do is in docs/operations.md, which every alarm points to
        assert alarm["AlarmDescription"]


def test_the_answer_chain_is_the_state_machines(sam: dict[str, Any]) -> None:
    """``ANSWER_CHAIN`` (what the capacity model, the chaos run and the benchmarks take as the
    per-answer functions) is the list of functions the answer state machine's definition
    invokes, in its order, each with its folder under functions/."""
    import re

    from irtcat.capacity.model import ANSWER_CHAIN, handler_folder

    props = sam["Resources"]["AnswerStateMachine"]["Properties"]
    substitutions = props["DefinitionSubstitutions"]
    named = re.findall(r"\$\{(\w+)\}", (ROOT / props["DefinitionUri"]).read_text())
    chain = []
    for name in named:
        target = substitutions[name]["Fn::GetAtt"][0]
        if target not in chain:
            chain.append(target)
    assert tuple(chain) == ANSWER_CHAIN
    for logical_id in ANSWER_CHAIN:
        assert (ROOT / "functions" / handler_folder(logical_id) / "app.py").exists(), logical_id


@pytest.mark.parametrize(("keep", "indexes"), [("false", ["sessions_by_test"]),
                                                ("true", ["sessions_by_test", "by_test"])])
def test_the_session_index_projects_keys_and_the_old_one_is_kept_only_when_asked(
        sam: dict[str, Any], keep: str, indexes: list[str]) -> None:
    """The index a session's answers never write (keys only); a stack deployed with the old
    ``by_test`` keeps it for one deploy (CloudFormation adds or drops one index per update)."""
    from irtcat.emulator.template import Resolver

    params = {k: str(v) for k, v in parameter_defaults(sam, {"KeepByTestIndex": keep}).items()}
    cfn = expand_sam(sam, params)
    table = Resolver(parameters=params, conditions=cfn.get("Conditions", {})).resolve(
        cfn["Resources"]["StateTable"]["Properties"])
    found = {g["IndexName"]: g["Projection"]["ProjectionType"] for g in table["GlobalSecondaryIndexes"]}
    assert list(found) == indexes and found["sessions_by_test"] == "KEYS_ONLY"
