"""Reading template.yaml: the CloudFormation YAML tags, SAM expansion and intrinsic resolution.

The local stack is built from the same template that ``sam deploy`` uses, so it cannot drift.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "123456789012"
REGION = "us-east-1"


# libyaml's parser when PyYAML has it: the pure-Python one is far slower on a template this size
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """YAML loader that turns ``!Ref X`` into ``{"Ref": "X"}`` and so on."""


def _tag_constructor(tag: str):  # type: ignore[no-untyped-def]
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _tag in ("Ref", "GetAtt", "Sub", "If", "Equals", "Not", "And", "Or", "Join", "Select",
             "Split", "FindInMap", "GetAZs", "Base64", "ImportValue", "Condition", "Cidr"):
    _CfnLoader.add_constructor(f"!{_tag}", _tag_constructor(_tag))


_PARSED: dict[tuple[str, float], dict[str, Any]] = {}


def load_template(path: str | Path) -> dict[str, Any]:
    """The template as a dict with intrinsic functions in their JSON form (a fresh copy; the
    parse is cached while the file is unchanged)."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _PARSED:
        with path.open(encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_CfnLoader)
        if not isinstance(data, dict) or "Resources" not in data:
            raise ValueError(f"{path} is not a CloudFormation template")
        _PARSED[key] = data
    return copy.deepcopy(_PARSED[key])


def expand_sam(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """Expand the SAM transform with aws-sam-translator (offline: no managed-policy lookups)."""
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # the translator warns that its usage metrics were never published (we publish none)
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    sam = copy.deepcopy(template)
    # The translator wants S3 locations for code; locally the code stays where it is.
    for res in sam["Resources"].values():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://local-code/{props['CodeUri'].strip('/')}"
        if res.get("Type") == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            props["ContentUri"] = f"s3://local-code/{props['ContentUri'].strip('/')}"
        if res.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["DefinitionUri"] = f"s3://local-code/{props['DefinitionUri']}"
    import boto3

    session = boto3.session.Session(region_name=REGION, aws_access_key_id="local",
                                    aws_secret_access_key="local")
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=session)
    out: dict[str, Any] = translator.translate(sam, parameter_values=dict(parameters),
                                               get_managed_policy_map=_NoManagedPolicies().load)
    return out


@dataclass
class Resolver:
    """Resolves Ref/GetAtt/Sub/If/... given physical names and attributes of resources."""

    parameters: dict[str, Any]
    conditions: dict[str, Any]
    physical: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    stack_name: str = "irtcat-local"

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com", "AWS::Partition": "aws", "AWS::NoValue": None,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack_name}/local",
        }.get(name)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"unresolved Ref {name}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            # AWS::NoValue, directly or as the branch an Fn::If takes, removes the element
            resolved = [(v, self.resolve(v)) for v in value]
            return [r for v, r in resolved if not (isinstance(v, dict) and r is None)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attributes[(res, attr)]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                out = re.sub(r"\$\{([^}!][^}]*)\}", lambda m: str(self._sub_var(m.group(1), extra)), text)
                return out.replace("${!", "${")  # ${!Literal} is an escaped ${Literal}
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.resolve(items))
            if key == "Fn::Select":
                idx, items = arg
                return self.resolve(items)[int(self.resolve(idx))]
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub_var(self, name: str, extra: dict[str, Any]) -> Any:
        if name in extra:
            return extra[name]
        if "." in name and not name.startswith("AWS::"):
            res, attr = name.split(".", 1)
            return self.attributes[(res, attr)]
        return self.ref(name)


def parameter_defaults(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Parameter values: the template's defaults with ``overrides`` applied."""
    values = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
    values.update(overrides or {})
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ValueError(f"parameters without a value: {', '.join(missing)}")
    return values
