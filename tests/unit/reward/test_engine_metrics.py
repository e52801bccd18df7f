"""The engine keeps every response valid JSON: non-finite metric values are replaced and counted."""

from __future__ import annotations

import json
import math

from lambdas.reward.engine import NONFINITE_METRIC, RewardFunction
from lambdas.reward.graders.base import Graded, Grader
from lambdas.reward.items import Sample


class _NonFiniteMetricsGrader(Grader):
    """A buggy grader: a fine score, but NaN and infinite values in its metrics."""

    kind = "stub"
    score_range = (0.0, 1.0)
    needs_reference = False

    def grade(self, sample: Sample) -> Graded:
        return (
            0.5,
            [
                {"name": "ok", "value": 1.0, "type": "Reward"},
                {"name": "broken", "value": math.nan, "type": "Metric"},
                {"name": "huge", "value": math.inf, "type": "Metric"},
            ],
        )


def test_non_finite_metric_values_become_zero_with_a_note_and_the_response_is_strict_json() -> None:
    function = RewardFunction("stub", {"type": "stub"}, _NonFiniteMetricsGrader())
    item = {"id": "a", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    (result,) = function.grade_batch([item])
    assert result["aggregate_reward_score"] == 0.5
    values = {m["name"]: m["value"] for m in result["metrics_list"]}
    assert values == {"ok": 1.0, "broken": 0.0, "huge": 0.0, NONFINITE_METRIC: 2.0}
    json.dumps(result, allow_nan=False)  # raises on NaN/Infinity
