"""Whether a role of the synthesized template may make a request: IAM's evaluation, offline.

:class:`RolePolicies` resolves a role's policies (the ``AWS::IAM::Policy`` resources attached to it and its
inline policies) and its trust policy with a concrete account and region, then applies IAM's rules for
identity-based policies in one account: an explicit ``Deny`` wins, else an ``Allow`` whose action, resource
and every condition match the request allows it, else it is denied. As the IAM User Guide describes them:

- actions match case-insensitively, with ``*`` and ``?`` wildcards;
- ARNs match component by component (the six colon-separated parts, the last one holding the rest), each
  case-sensitively with ``*`` and ``?`` wildcards, for the ``Resource`` element and the ``Arn*`` operators;
- a condition holds when every operator holds, an operator when every key holds, and a key when the request's
  value matches any of the policy's values; a key the request does not carry fails its condition.

Only what the stack's policies use is known (``Action``, ``Resource``, ``Principal.Service`` and the operators
``StringEquals``, ``StringLike``, ``ArnEquals``, ``ArnLike``); anything else raises :class:`UnsupportedPolicy`
instead of being judged, and so do AWS managed policies (their documents are not in the template).
Tests use it to check grants against ARNs in the formats AWS services present.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from offline import ACCOUNT, REGION, pseudo_parameters

# How a resource's ARN (Fn::GetAtt Arn, or Ref of a role) is rendered, by CloudFormation type.
_ARNS = {
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Lambda::Version": "arn:aws:lambda:{region}:{account}:function:{name}:1",
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
}
_OPERATORS = ("StringEquals", "StringLike", "ArnEquals", "ArnLike")


class UnsupportedPolicy(ValueError):
    """A policy element or operator this evaluator does not implement (so it gives no verdict)."""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def _wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(expression, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case=ignore_case).fullmatch(value) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """``arn`` matches ``pattern`` component by component (``*`` and ``?`` within each of the six parts)."""
    if pattern == "*":
        return True
    expected, actual = pattern.split(":", 5), arn.split(":", 5)
    return len(expected) == len(actual) == 6 and all(map(_matches, expected, actual))


@dataclass(frozen=True)
class Resolver:
    """The template's intrinsic functions with a concrete account and region."""

    resources: Mapping[str, Any]
    account: str = ACCOUNT
    region: str = REGION

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {k: self(v) for k, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument
            if attribute == "Name":
                # The name the resolver gives the resource in its ARN (an execution ARN joins a state machine's).
                return self._name(logical_id)
            if attribute != "Arn":
                raise UnsupportedPolicy(f"Fn::GetAtt {logical_id}.{attribute}")
            return self._arn(logical_id)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(self(p)) for p in parts)
        raise UnsupportedPolicy(function)

    def _ref(self, name: str) -> str:
        pseudo = pseudo_parameters(self.account, self.region)
        if name in pseudo:
            return pseudo[name]
        # Ref gives a version's or a topic's ARN, and the name of anything else.
        kind = self.resources[name]["Type"]
        if kind in ("AWS::Lambda::Version", "AWS::SNS::Topic"):
            return self._arn(name)
        return name.lower() if kind == "AWS::S3::Bucket" else name

    def _arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if kind not in _ARNS:
            raise UnsupportedPolicy(f"the ARN of a {kind} ({logical_id})")
        return _ARNS[kind].format(account=self.account, region=self.region, name=self._name(logical_id))

    def _name(self, logical_id: str) -> str:
        return logical_id.lower() if self.resources[logical_id]["Type"] == "AWS::S3::Bucket" else logical_id

    def arn(self, logical_id: str) -> str:
        """The ARN the resolver gives ``logical_id`` (a role, function, bucket, key, ...)."""
        return self._arn(logical_id)


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, keys in condition.items():
        if operator not in _OPERATORS:
            raise UnsupportedPolicy(f"condition operator {operator}")
        for key, allowed in keys.items():
            value = context.get(key)
            if value is None:
                return False
            values = [str(v) for v in _as_list(allowed)]
            if operator == "StringEquals" and value not in values:
                return False
            if operator == "StringLike" and not any(_matches(v, value) for v in values):
                return False
            if operator.startswith("Arn") and not any(arn_matches(v, value) for v in values):
                return False
    return True


def _statement_applies(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Action", "Resource", "Condition"}
    if unknown:
        raise UnsupportedPolicy(f"policy elements {sorted(unknown)}")
    return (
        any(_matches(a, action, ignore_case=True) for a in _as_list(statement["Action"]))
        and any(arn_matches(r, resource) for r in _as_list(statement["Resource"]))
        and _condition_holds(statement.get("Condition", {}), context)
    )


@dataclass(frozen=True)
class RolePolicies:
    """A role of ``template`` and what it may do: ``allows(action, resource, **context)``."""

    template: Mapping[str, Any]
    role: str
    account: str = ACCOUNT
    region: str = REGION

    @property
    def _resolve(self) -> Resolver:
        return Resolver(self.template["Resources"], self.account, self.region)

    @property
    def arn(self) -> str:
        return self._resolve.arn(self.role)

    def statements(self) -> Iterator[Mapping[str, Any]]:
        resources = self.template["Resources"]
        properties = resources[self.role]["Properties"]
        if properties.get("ManagedPolicyArns"):
            raise UnsupportedPolicy(f"{self.role} attaches managed policies, whose documents are not in the template")
        documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        documents += [
            r["Properties"]["PolicyDocument"]
            for r in resources.values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": self.role} in r["Properties"].get("Roles", [])
        ]
        for document in documents:
            yield from self._resolve(document["Statement"])

    def allows(self, action: str, resource: str, **context: str) -> bool:
        """Whether the role's identity policies allow ``action`` on ``resource`` with ``context`` (condition keys
        as keyword arguments: ``allows(..., **{"iam:PassedToService": "bedrock.amazonaws.com"})``)."""
        applicable = [s for s in self.statements() if _statement_applies(s, action, resource, context)]
        return any(s["Effect"] == "Allow" for s in applicable) and not any(s["Effect"] == "Deny" for s in applicable)

    def trusts(self, service: str, **context: str) -> bool:
        """Whether ``service`` may assume the role (``sts:AssumeRole``) with ``context``, e.g. its
        ``aws:SourceAccount`` and ``aws:SourceArn``."""
        document = self._resolve(self.template["Resources"][self.role]["Properties"]["AssumeRolePolicyDocument"])
        applicable = []
        for statement in document["Statement"]:
            unknown = set(statement) - {"Sid", "Effect", "Action", "Principal", "Condition"}
            if unknown or set(statement["Principal"]) != {"Service"}:
                raise UnsupportedPolicy(
                    f"trust policy elements {sorted(unknown)} or principal {statement['Principal']}"
                )
            if (
                service in _as_list(statement["Principal"]["Service"])
                and any(_matches(a, "sts:AssumeRole", ignore_case=True) for a in _as_list(statement["Action"]))
                and _condition_holds(statement.get("Condition", {}), context)
            ):
                applicable.append(statement)
        return any(s["Effect"] == "Allow" for s in applicable) and not any(s["Effect"] == "Deny" for s in applicable)
