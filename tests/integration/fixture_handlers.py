"""Tiny Lambda handlers for the bridge tests (the fixture state machine in ``fixture_stack.py``)."""

from __future__ import annotations

import os
from functools import lru_cache

import boto3

LOADED_WITH = os.environ.get("GREETING")  # module-level state: one module instance per function


class QuotaBreached(Exception):
    """A custom error class: Step Functions sees its name as the Error."""


@lru_cache(maxsize=1)
def greeting() -> str:
    return os.environ["GREETING"]


def greet(event: dict, context) -> dict:
    print(f"greeting {event}")  # goes to the function's log, not the rehearsal's output
    return {"greeting": greeting(), "loadedWith": LOADED_WITH, "function": context.function_name, "event": event}


def fail(event: dict, context) -> dict:
    raise QuotaBreached(f"budget {event.get('budget')} exceeded")


def import_model(event: dict, context) -> dict:
    bedrock = boto3.client("bedrock")
    arn = bedrock.create_custom_model(
        modelName=event["name"],
        roleArn=os.environ["ROLE_ARN"],
        clientRequestToken=event["token"],
        modelSourceConfig={"s3DataSource": {"s3Uri": event["checkpoint"]}},
    )["modelArn"]
    return {"arn": arn}


def check_model(event: dict, context) -> dict:
    model = boto3.client("bedrock").get_custom_model(modelIdentifier=event["arn"])
    return {"arn": event["arn"], "status": model["modelStatus"]}


def nested(event: dict, context) -> dict:
    """Invokes another function from inside a call (the pre-flight grader smoke test does this)."""
    import json

    response = boto3.client("lambda").invoke(FunctionName=os.environ["TARGET"], Payload=json.dumps({"from": "nested"}))
    inner = json.loads(response["Payload"].read())
    return {"inner": inner, "myGreeting": greeting()}
