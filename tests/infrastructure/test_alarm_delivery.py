"""Alarm delivery: every alarm may publish to the encrypted topic, and CloudWatch acts for this account only.

The topic policy written by ``enforce_ssl`` replaces SNS's default policy, and the topic is encrypted with
the customer-managed key, so an alarm reaches its subscribers only if the topic policy allows
``cloudwatch.amazonaws.com`` to publish and the key policy lets it use the key. Both grants are bound to
this account's alarms by ``aws:SourceAccount`` and ``aws:SourceArn``.
"""

from __future__ import annotations

import json
from typing import Any

from app import default_context
from offline.synth import Synthesized

CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}
ACCOUNT = {"Ref": "AWS::AccountId"}
REGION = default_context()["region"]
ANY_ALARM_OF_THIS_ACCOUNT = f"arn:aws:cloudwatch:{REGION}:<account>:alarm:*"


def _rendered(value: Any) -> str:
    """An ARN with ``Fn::Join`` flattened and the account reference written as ``<account>``."""
    if isinstance(value, str):
        return value
    if value == ACCOUNT:
        return "<account>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_rendered(part) for part in parts)
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _topic_id(synthesized: Synthesized) -> str:
    [topic_id] = synthesized.resources("AWS::SNS::Topic")
    return topic_id


def _topic_statements(synthesized: Synthesized, topic_id: str) -> list[dict]:
    return [
        statement
        for policy in synthesized.resources("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in policy["Properties"]["Topics"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _cloudwatch_publish(statements: list[dict], topic_id: str) -> list[dict]:
    """The statements allowing CloudWatch to publish to the topic."""
    return [
        s
        for s in statements
        if s["Effect"] == "Allow"
        and s["Principal"] == CLOUDWATCH
        and "sns:Publish" in _as_list(s["Action"])
        and {"Ref": topic_id} in _as_list(s["Resource"])
    ]


def _source_arns(statement: dict) -> list[tuple[str, Any]]:
    """``(operator, value)`` for every ``aws:SourceArn`` the statement's conditions accept."""
    condition = statement.get("Condition", {})
    return [
        (operator, value)
        for operator in ("ArnEquals", "ArnLike")
        for value in _as_list(condition.get(operator, {}).get("aws:SourceArn", []))
    ]


def _admits(statement: dict, alarm_id: str) -> bool:
    """Whether the statement's conditions let CloudWatch act for the alarm ``alarm_id`` of this account."""
    if statement.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount") != ACCOUNT:
        return False
    return any(
        value == {"Fn::GetAtt": [alarm_id, "Arn"]}
        or (operator == "ArnLike" and _rendered(value) == ANY_ALARM_OF_THIS_ACCOUNT)
        for operator, value in _source_arns(statement)
    )


def test_the_topic_policy_lets_cloudwatch_publish_for_this_accounts_alarms_only(synthesized: Synthesized) -> None:
    topic_id = _topic_id(synthesized)
    statements = _topic_statements(synthesized, topic_id)
    # TLS is still required of every publisher
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    grants = _cloudwatch_publish(statements, topic_id)
    assert grants, "nothing allows cloudwatch.amazonaws.com to publish to the topic"
    alarms = set(synthesized.resources("AWS::CloudWatch::Alarm"))
    for grant in grants:
        assert _as_list(grant["Action"]) == ["sns:Publish"]
        assert grant["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
        # every accepted source is one of the stack's alarms (or, at widest, an alarm of this account and region)
        sources = _source_arns(grant)
        assert sources
        for operator, value in sources:
            assert (isinstance(value, dict) and value.get("Fn::GetAtt", [None])[0] in alarms) or (
                operator == "ArnLike" and _rendered(value) == ANY_ALARM_OF_THIS_ACCOUNT
            ), value
    # nothing else is allowed to anybody by the topic policy (the notify Lambda publishes through its role)
    assert all(s["Principal"] == CLOUDWATCH for s in statements if s["Effect"] == "Allow")


def test_every_alarm_notifies_the_topic_and_may_publish_to_it(synthesized: Synthesized) -> None:
    topic_id = _topic_id(synthesized)
    grants = _cloudwatch_publish(_topic_statements(synthesized, topic_id), topic_id)
    alarms = synthesized.resources("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], alarm_id
        assert any(_admits(grant, alarm_id) for grant in grants), f"{alarm_id} may not publish to the topic"


def test_cloudwatch_may_use_the_topic_key_for_this_accounts_alarms_only(synthesized: Synthesized) -> None:
    topic = synthesized.resources("AWS::SNS::Topic")[_topic_id(synthesized)]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synthesized.resources("AWS::KMS::Key")[key_id]["Properties"]
    [statement] = [s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == CLOUDWATCH]
    assert statement["Effect"] == "Allow"
    # what publishing to an encrypted topic needs, nothing more
    assert sorted(_as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert statement.get("Condition", {}).get("StringEquals") == {"aws:SourceAccount": ACCOUNT}
    [(operator, source)] = _source_arns(statement)
    assert operator == "ArnLike" and _rendered(source) == ANY_ALARM_OF_THIS_ACCOUNT
