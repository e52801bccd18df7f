"""The reward Lambda handler: configuration at cold start, the bare-list contract, logs and EMF metrics."""

from __future__ import annotations

import io
import json

import pytest

from lambdas.reward.config import ConfigError
from lambdas.reward.spec import SpecError

from .support import item, metrics_of


def emf_blobs(output: str) -> list[dict]:
    blobs = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def capture_logs(handler) -> io.StringIO:
    buffer = io.StringIO()
    handler.logger.registered_handler.setStream(buffer)
    return buffer


def test_preset_selection_grades_a_bare_list_and_returns_a_bare_list(load_handler, lambda_context):
    # Given the classification preset
    handler = load_handler(GRADER_PRESET="classification")
    event = [item("HQ", "HQ", item_id="a"), item("LQ_CLOSE", "HQ", item_id="b")]
    # When the handler is invoked with a bare list
    results = handler.lambda_handler(event, lambda_context)
    # Then it returns a bare list, one result per item, ids echoed, +1/-1 scores
    assert isinstance(results, list)
    assert [(r["id"], r["aggregate_reward_score"]) for r in results] == [("a", 1.0), ("b", -1.0)]
    assert handler.reward.name == "classification"
    assert json.loads(json.dumps(results, allow_nan=False)) == results


def test_inline_spec_selection(load_handler, lambda_context):
    handler = load_handler(GRADER_SPEC=json.dumps({"type": "numeric", "rel_tol": 0.05}))
    results = handler.lambda_handler([item("ANSWER: 104", 100)], lambda_context)
    assert results[0]["aggregate_reward_score"] == 1.0
    assert handler.reward.name == "inline-numeric"


def test_inline_spec_may_be_a_preset_shaped_document(load_handler):
    document = {"name": "my-grader", "version": "1", "description": "d", "spec": {"type": "text_similarity"}}
    handler = load_handler(GRADER_SPEC=json.dumps(document))
    assert handler.reward.name == "my-grader"


def test_a_bad_spec_fails_at_load_with_the_field_path(load_handler):
    spec = {
        "type": "weighted",
        "graders": {"tool": {"weight": 1, "grader": {"type": "tool_call", "weights": {"order": -1}}}},
    }
    with pytest.raises(SpecError, match=r"^graders\.tool\.grader\.weights\.order: must be a number >= 0"):
        load_handler(GRADER_SPEC=json.dumps(spec))


@pytest.mark.parametrize(
    "environment, message",
    [
        ({}, "set GRADER_SPEC"),
        ({"GRADER_PRESET": "classification", "GRADER_SPEC": '{"type": "text_similarity"}'}, "not both"),
        (
            {"GRADER_PRESET": "no-such-preset"},
            "unknown grader preset 'no-such-preset' \\(shipped: classification, finqa, legal-tool-calling, numeric, ",
        ),
        ({"GRADER_PRESET": "../etc/passwd"}, "invalid preset name"),
    ],
)
def test_missing_or_ambiguous_configuration_fails_at_load(load_handler, environment, message):
    with pytest.raises(ConfigError, match=message):
        load_handler(**environment)


def test_invalid_spec_json_fails_at_load(load_handler):
    with pytest.raises(SpecError, match="GRADER_SPEC is not valid JSON"):
        load_handler(GRADER_SPEC="{type: label}")


def test_malformed_items_do_not_affect_others(load_handler, lambda_context):
    handler = load_handler(GRADER_PRESET="numeric")
    event = [
        item("#### 16", "16", item_id=1),
        {"id": 2, "messages": [{"role": "user", "content": "q"}]},
        17,
        item("#### 3", "3", item_id=4),
    ]
    results = handler.lambda_handler(event, lambda_context)
    assert [r["aggregate_reward_score"] for r in results] == [1.0, -0.5, -0.5, 1.0]
    assert metrics_of(results[1]) == {"malformed:no_assistant_turn": 1.0}
    assert [r["id"] for r in results] == [1, 2, None, 4]


def test_a_single_item_object_is_graded_as_a_batch_of_one(load_handler, lambda_context):
    handler = load_handler(GRADER_PRESET="classification")
    results = handler.lambda_handler(item("HQ", "HQ", item_id="solo"), lambda_context)
    assert [r["id"] for r in results] == ["solo"]


@pytest.mark.parametrize("event", [None, 42, "not json", {"body": "garbage"}])
def test_an_event_without_items_returns_an_empty_list_and_logs_an_error(load_handler, lambda_context, event):
    handler = load_handler(GRADER_PRESET="classification")
    logs = capture_logs(handler)
    assert handler.lambda_handler(event, lambda_context) == []
    assert "event holds no batch of items" in logs.getvalue()


def test_emf_metrics_carry_namespace_grader_dimension_and_batch_statistics(load_handler, lambda_context, capsys):
    # Given the numeric preset and a batch with one malformed item
    handler = load_handler(GRADER_PRESET="numeric")
    capsys.readouterr()
    # When a batch is graded
    handler.lambda_handler([item("#### 16", "16"), item("#### 15", "16"), "junk"], lambda_context)
    # Then one EMF blob carries the batch metrics under the namespace with the grader dimension
    blobs = [blob for blob in emf_blobs(capsys.readouterr().out) if "RewardMean" in blob]
    assert len(blobs) == 1
    blob = blobs[0]
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "NovaCustomization"
    assert all("grader" in dimensions for dimensions in directive["Dimensions"])
    assert blob["grader"] == "numeric"
    # Powertools serialises each metric as a list of the values added in the invocation
    assert blob["BatchSize"] == [3.0]
    assert blob["MalformedItems"] == [1.0]
    assert blob["RewardMax"] == [1.0] and blob["RewardMin"] == [-0.5]
    assert blob["RewardMean"] == [pytest.approx((1.0 + 0.0 - 0.5) / 3)]
    assert blob["JudgeFailures"] == [0.0]
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units["GradingDuration"] == "Milliseconds" and units["BatchSize"] == "Count"


def test_structured_log_summarises_the_batch_without_prompts(load_handler, lambda_context):
    handler = load_handler(GRADER_PRESET="classification")
    logs = capture_logs(handler)
    secret_prompt = "PROPRIETARY QUESTION TEXT"
    handler.lambda_handler(
        [item("HQ", "HQ", prompt=secret_prompt), item("", "HQ", prompt=secret_prompt), {"id": "x"}], lambda_context
    )
    records = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    graded = [r for r in records if r.get("message") == "graded batch"]
    assert len(graded) == 1
    summary = graded[0]
    assert (summary["count"], summary["malformed"], summary["malformed_reasons"]) == (3, 1, {"no_messages": 1})
    assert summary["maximum"] == 1.0 and summary["minimum"] == -2.0
    assert summary["function_name"] == lambda_context.function_name
    assert secret_prompt not in logs.getvalue()


def test_the_remaining_time_bounds_the_grading_deadline(load_handler, lambda_context):
    handler = load_handler(GRADER_PRESET="classification")

    class Context:
        def get_remaining_time_in_millis(self):
            return 10_000

    assert handler._deadline(Context()) is not None
    assert handler._deadline(lambda_context) is None
