"""Property-based tests: whatever the event holds, grading never raises and keeps its guarantees."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.reward.engine import compile_spec
from lambdas.reward.graders.tool_call import COMPONENTS

from .conftest import CONTEXT
from .support import LABELS, item, metrics_of, preset

SPECS = {
    "classification": preset("classification").spec,
    "numeric": preset("numeric").spec,
    "tool-calling": preset("tool-calling").spec,
    "json_schema": {
        "type": "json_schema",
        "schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    },
    "rouge": {
        "type": "text_similarity",
        "metric": "rouge_l",
        "guards": [{"type": "format", "forbid_regex": "sorry", "penalty": 0.5}],
    },
    "weighted": {
        "type": "weighted",
        "graders": {
            "num": {"weight": 0.5, "grader": {"type": "numeric", "partial_credit_until": 3}},
            "sim": {"weight": 0.5, "grader": {"type": "text_similarity"}},
        },
    },
}
REWARDS = {name: compile_spec(spec, name=name) for name, spec in SPECS.items()}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
answer_texts = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "HQ",
            "LQ_EDIT or HQ",
            "#### 16",
            "ANSWER: 65.3%",
            "\\boxed{",
            '```json\n{"tool_calls": [',
            '{"a": 1}',
            "(1,234)",
            "1e999",
        ]
    ),
    st.builds(
        lambda calls: json.dumps({"tool_calls": calls}),
        st.lists(st.fixed_dictionaries({"name": st.text(max_size=10), "arguments": json_values}), max_size=3),
    ),
)
contents = st.one_of(
    answer_texts,
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"type": st.just("text"), "text": answer_texts}),
            st.fixed_dictionaries({"text": answer_texts}),
            json_values,
        ),
        max_size=3,
    ),
    json_values,
)
messages = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "assistant", "nova_assistant", "system", "ASSISTANT", 7]),
                "content": contents,
            }
        ),
        json_values,
    ),
    max_size=4,
)
references = st.one_of(
    json_values,
    st.sampled_from(
        [*LABELS, "16", 0.653, "65.3%", {"final_answer": "5"}, {"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}]
    ),
)
structured_items = st.builds(
    lambda item_id, msgs, reference, in_metadata: {
        **({"id": item_id} if item_id is not None else {}),
        "messages": msgs,
        **({"metadata": {"reference_answer": reference}} if in_metadata else {"reference_answer": reference}),
    },
    st.one_of(st.none(), st.text(max_size=10), st.integers()),
    messages,
    references,
    st.booleans(),
)
batches = st.lists(st.one_of(structured_items, json_values), max_size=8)


def assert_contract(reward, batch, results):
    low, high = reward.score_range
    assert isinstance(results, list) and len(results) == len(batch)
    for entry, result in zip(batch, results, strict=True):
        assert result["id"] == (entry.get("id") if isinstance(entry, dict) else None)
        value = result["aggregate_reward_score"]
        assert isinstance(value, float) and math.isfinite(value)
        assert low <= value <= high
        for metric in result["metrics_list"]:
            assert metric["type"] in ("Reward", "Metric")
            assert isinstance(metric["name"], str) and math.isfinite(metric["value"])
    json.dumps(results, allow_nan=False)  # the response must be valid JSON


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches)
def test_any_batch_gets_one_finite_in_range_score_per_item_with_ids_echoed(name, batch):
    reward = REWARDS[name]
    assert_contract(reward, batch, reward(batch))


@settings(max_examples=40, deadline=None)
@given(event=json_values)
def test_the_handler_never_raises_on_arbitrary_events(load_handler_once, event):
    handler = load_handler_once
    results = handler.lambda_handler(event, CONTEXT)
    assert isinstance(results, list)
    json.dumps(results, allow_nan=False)


@pytest.fixture(scope="module")
def load_handler_once():
    import importlib
    import os
    import sys

    previous = {key: os.environ.pop(key, None) for key in ("GRADER_SPEC", "GRADER_PRESET")}
    os.environ["GRADER_PRESET"] = "classification"
    sys.modules.pop("lambdas.reward.handler", None)
    try:
        yield importlib.import_module("lambdas.reward.handler")
    finally:
        sys.modules.pop("lambdas.reward.handler", None)
        os.environ.pop("GRADER_PRESET", None)
        for key, value in previous.items():
            if value is not None:
                os.environ[key] = value


@settings(max_examples=150, deadline=None)
@given(
    value=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    percent=st.booleans(),
    marker=st.sampled_from(["ANSWER: {}", "#### {}", "\\boxed{{{}}}", "The answer is:\nANSWER: {}"]),
)
def test_a_marked_reference_number_always_scores_full(value, percent, marker):
    reference = f"{value!r}%" if percent else value
    written = f"{format(value, 'f')}%" if percent else format(value, "f")
    result = REWARDS["numeric"]([item(marker.format(written), reference)])[0]
    assert metrics_of(result)["numeric_match"] == 1.0, (marker.format(written), reference)


@settings(max_examples=150, deadline=None)
@given(
    label=st.sampled_from(LABELS),
    before=st.text(alphabet="abcdefgh .,:*\n", max_size=20),
    after=st.text(alphabet="abcdefgh .,:*\n", max_size=20),
    wrap=st.sampled_from(["{}", "**{}**", "'{}'", "`{}`", "{}."]),
)
def test_exactly_one_label_in_any_surrounding_text_is_read(label, before, after, wrap):
    reward = REWARDS["classification"]
    text = f"{before} {wrap.format(label)} {after}"
    assert reward([item(text, label)])[0]["aggregate_reward_score"] == 1.0
    others = [other for other in LABELS if other != label]
    # A second label listed beside it, or every label named, is a hedge wherever it stands
    listed = f"{before} {wrap.format(label)}, {others[0]} {after}"
    assert reward([item(listed, label)])[0]["aggregate_reward_score"] == -1.0
    assert reward([item(f"{text} {others[0]} {others[1]}", label)])[0]["aggregate_reward_score"] == -1.0


@settings(max_examples=100, deadline=None)
@given(
    arguments=st.dictionaries(
        st.text(alphabet="abcdefghij_", min_size=1, max_size=8),
        st.one_of(st.integers(-999, 999), st.text(alphabet="xyz ", max_size=8), st.booleans()),
        max_size=4,
    ),
    string_style=st.booleans(),
)
def test_the_reference_calls_score_full_in_any_argument_order_or_encoding(arguments, string_style):
    reference = {"tool_calls": [{"name": "search_case_law", "arguments": arguments}]}
    shuffled = dict(reversed(list(arguments.items())))
    encoded = json.dumps(shuffled) if string_style else shuffled
    response = json.dumps(
        {"tool_calls": [{"type": "function", "function": {"name": "search_case_law", "arguments": encoded}}]}
    )
    result = REWARDS["tool-calling"]([item(response, reference)])[0]
    assert all(metrics_of(result)[name] == 1.0 for name in COMPONENTS)
