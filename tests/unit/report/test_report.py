"""The HTML run report: rendered for sample runs and parsed back to check its content."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

import pytest

from lambdas.pipeline.naming import STAGES
from lambdas.pipeline.report import render_report as render_record
from lambdas.pipeline.schema import RunRecord
from tests.unit.pipeline import samples as pipeline_samples
from tests.unit.report.samples import (
    SUCCEEDED_RUN,
    bedrock_run,
    failed_run,
    gate_rejected_run,
    preflight_with_dataset_notes,
)


def render_report(run: dict) -> str:
    """The report of a run.json as read from S3 (the schema validates it first)."""
    return render_record(RunRecord.model_validate(run))


class Page(HTMLParser):
    """Elements with their attributes, plus the visible text, of a rendered page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.elements if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


def _value(attrs: dict[str, str | None], name: str) -> str:
    """The value of an attribute the element must carry."""
    value = attrs.get(name)
    assert value is not None, f"no {name} attribute in {attrs}"
    return value


def _group(pattern: str, html: str) -> str:
    """The first group of the first match of ``pattern``, which must match."""
    match = re.search(pattern, html)
    assert match is not None, pattern
    return match.group(1)


def _bars(page: Page) -> dict[str, dict[str, float]]:
    """metric -> series -> value, read from the chart's bars (groups carry the metric name)."""
    bars: dict[str, dict[str, float]] = {}
    metric = None
    for tag, attrs in page.elements:
        if tag == "g" and attrs.get("class") == "metric":
            metric = _value(attrs, "data-metric")
        if tag == "rect" and attrs.get("class") == "bar":
            assert metric is not None, "a bar outside a metric group"
            bars.setdefault(metric, {})[_value(attrs, "data-series")] = float(_value(attrs, "data-value"))
    return bars


def test_a_succeeded_run_charts_baseline_sft_and_rft_on_every_metric() -> None:
    page = Page(render_report(SUCCEEDED_RUN))
    assert _bars(page) == {
        "exact_match": {"baseline": 0.52, "sft": 0.66, "rft": 0.78},
        "f1": {"baseline": 0.61, "sft": 0.70, "rft": 0.80},
        "latency_ms": {"baseline": 820, "sft": 800, "rft": 790},
    }
    # The table shows the same numbers
    assert [r["data-metric"] for r in page.find("tr") if r.get("data-metric")] == ["exact_match", "f1", "latency_ms"]
    assert "0.78" in page.visible and "820" in page.visible


def test_bars_of_one_metric_are_proportional_to_their_values() -> None:
    html = render_report(SUCCEEDED_RUN)
    # Scores share the 0..1 scale; latency is scaled to its own largest value
    for metric, ratio in (("exact_match", 0.52 / 0.78), ("latency_ms", 820 / 790)):
        group = _group(rf'<g class="metric" data-metric="{metric}">(.*?)</g>', html)
        widths = [float(w) for w in re.findall(r'<rect[^>]* width="([\d.]+)"', group)]
        assert len(widths) == 3
        assert widths[0] / widths[2] == pytest.approx(ratio, rel=1e-2)


def test_the_page_is_self_contained() -> None:
    html = render_report(SUCCEEDED_RUN)
    page = Page(html)
    assert page.find("script") == []
    assert page.find("link") == []
    assert all(not (a.get("src") or "").startswith("http") for _, a in page.elements)
    assert "@import" not in html and "url(" not in html
    assert page.find("svg", id="metrics-chart") and page.find("svg", id="timeline")


def test_gate_decision_timeline_and_links() -> None:
    page = Page(render_report(SUCCEEDED_RUN))
    [gate] = page.find("div", id="gate")
    assert gate["data-passed"] == "True"
    assert "PASSED" in page.visible and "exact_match 0.78 >= 0.7" in page.visible
    # One timeline bar per timed stage, in pipeline order
    assert [g["data-stage"] for g in page.find("g", **{"class": "stage"})] == [
        "baselineEval",
        "sft",
        "sftEval",
        "rft",
        "finalEval",
    ]
    assert "2 h 10 min" in page.visible  # SFT duration
    hrefs = [_value(a, "href") for a in page.find("a")]
    assert any("sagemaker/home?region=us-east-1#/jobs/nova-weekly-rft-1" in h for h in hrefs)
    assert any("states/home?region=us-east-1#/v2/executions/details/arn:aws:states" in h for h in hrefs)
    assert any("bedrock/home?region=us-east-1" in h for h in hrefs)
    assert "custom-model-deployment/dep789" in page.visible
    assert "etag-sft-1" in page.visible and "classification (version 3)" in page.visible


def test_a_gate_rejected_run_shows_the_reasons_and_no_deployment() -> None:
    page = Page(render_report(gate_rejected_run()))
    [gate] = page.find("div", id="gate")
    assert gate["data-passed"] == "False"
    assert "REJECTED" in page.visible
    assert "exact_match 0.55 < 0.7" in page.visible
    assert "Not deployed." in page.visible
    assert page.find("code", id="deployment-arn") == []
    assert _bars(page)["exact_match"] == {"baseline": 0.52, "sft": 0.66, "rft": 0.55}


def test_a_model_the_run_deleted_is_shown_as_deleted() -> None:
    run = gate_rejected_run()
    run["model"] = {**SUCCEEDED_RUN["model"], "status": "Deleted", "deletedAt": "2026-01-05T09:00:00Z"}
    page = Page(render_report(run))
    assert len(page.find("code", id="model-arn")) == 1 and page.find("code", id="deployment-arn") == []
    assert (
        f"{SUCCEEDED_RUN['model']['arn']} (deleted at 2026-01-05T09:00:00Z: the run did not deploy it)" in page.visible
    )


def test_a_failed_run_shows_where_and_why_and_what_it_measured() -> None:
    page = Page(render_report(failed_run()))
    assert page.find("div", id="error")
    assert "Failed at stage rft" in page.visible
    assert "ResourceLimitExceeded" in page.visible
    # No final evaluation: only baseline and SFT bars
    assert _bars(page)["f1"] == {"baseline": 0.61, "sft": 0.70}
    assert "not reached" in page.visible


def test_user_text_is_escaped_everywhere() -> None:
    run = copy.deepcopy(SUCCEEDED_RUN)
    evil = '<script>alert("x")</script>'
    run["runId"] = evil
    run["error"] = {"stage": evil, "cause": evil}
    run["gate"]["reasons"] = [evil]
    run["stages"]["baselineEval"]["metrics"] = {evil: 0.5}
    run["stages"]["sft"]["jobName"] = '" onmouseover="x'
    html = render_report(run)
    page = Page(html)
    assert page.find("script") == []
    assert "<script>" not in html
    assert all("onmouseover" not in attrs for _, attrs in page.elements)
    assert evil in page.visible  # shown as text


@pytest.mark.parametrize(
    "run",
    [
        {"runId": "r", "pipeline": "nova", "status": "ABORTED", "recordedBy": "notify"},
        {"runId": "r", "pipeline": "nova", "status": "FAILED", "error": {"stage": "validateRun", "cause": "bad"}},
        {
            "runId": "r",
            "pipeline": "nova",
            "status": "FAILED",
            "stages": {s: {"status": "NOT_COMPLETED", "startedAt": "not a time"} for s in STAGES},
        },
    ],
)
def test_partial_records_still_render(run: dict) -> None:
    page = Page(render_report(run))
    assert page.find("h1")
    assert _bars(page) == {}


def test_without_rft_the_final_evaluation_is_labelled_final() -> None:
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["stages"]["rft"] = {"status": "SKIPPED"}
    html = render_report(run)
    header = _group(r'<table id="metrics-table"><thead>(.*?)</thead>', html)
    assert re.findall(r"<th[^>]*>([^<]+)</th>", header) == ["Metric", "Baseline", "SFT", "Final"]


def test_with_rft_the_columns_are_baseline_sft_rft() -> None:
    html = render_report(SUCCEEDED_RUN)
    header = _group(r'<table id="metrics-table"><thead>(.*?)</thead>', html)
    assert re.findall(r"<th[^>]*>([^<]+)</th>", header) == ["Metric", "Baseline", "SFT", "RFT"]


def test_the_pipelines_metrics_table_wins_over_stage_metrics() -> None:
    # Given a run without RFT: the pipeline's table puts the final evaluation in the SFT column
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["stages"]["rft"] = {"status": "SKIPPED"}
    run["metrics"] = {
        "metric": "exact_match",
        "candidate": "sft",
        "table": {"baseline": {"exact_match": 0.52}, "sft": {"exact_match": 0.78}, "rft": None},
    }
    page = Page(render_report(run))
    assert _bars(page) == {"exact_match": {"baseline": 0.52, "sft": 0.78}}


def test_a_record_built_by_the_pipeline_renders() -> None:
    # Given the run state the pipeline's "Record run" step receives
    from lambdas.pipeline.record import build_record
    from lambdas.pipeline.schema import RunState

    state = {
        "input": {"datasets": {"sft": "s3://data/datasets/sft.jsonl"}},
        "execution": {
            "id": "arn:aws:states:us-east-1:123456789012:execution:Pipeline:request-x",
            "name": "request-x",
            "startTime": "2025-06-01T10:00:00Z",
        },
        "plan": {**pipeline_samples.plan().to_json(), "runId": "request-x"},
        "stages": SUCCEEDED_RUN["stages"],
        "gate": {"passed": True, "reasons": ["exact_match 0.78 >= 0.7"]},
        "deployment": SUCCEEDED_RUN["deployment"],
    }
    record = build_record(
        RunState.model_validate(state),
        status="SUCCEEDED",
        ended_at="2025-06-01T16:40:00Z",
        region="us-east-1",
        pipeline_name="nova",
    )
    page = Page(render_record(record))
    assert _bars(page)["exact_match"] == {"baseline": 0.52, "sft": 0.66, "rft": 0.78}
    assert "request-x" in page.visible and "etag-datasets/sft.jsonl" in page.visible
    assert any("#/jobs/nova-weekly-sft-1" in _value(a, "href") for a in page.find("a"))


def test_the_resolved_model_of_the_plan_is_shown_by_name_not_as_a_mapping() -> None:
    # Given a plan whose model is the resolved catalog entry (as Validate run produces it)
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["plan"]["model"] = {
        "key": "nova-2-lite",
        "modelType": "amazon.nova-2-lite-v1:0:256k",
        "modelNameOrPath": "nova-lite-2/prod",
    }
    page = render_report(run)
    assert "<th>Base model</th><td>nova-2-lite amazon.nova-2-lite-v1:0:256k</td>" in page


def test_what_preflight_found_is_shown_cost_quotas_and_warnings() -> None:
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["preflight"] = {
        "datasets": {},
        "cost": {
            "estimatedUsd": 1788.8,
            "maxUsd": 2000.0,
            "items": [],
            "expectedUsd": 512.25,
            "runtimeWarnings": ["RFT training: estimated 9.0 h exceeds its maximum runtime 4 h"],
        },
        "quotas": {
            "status": "checked",
            "reason": None,
            "instanceTypes": [
                {
                    "instanceType": "ml.p5.48xlarge",
                    "quotaName": "ml.p5.48xlarge for training job usage",
                    "quota": 4.0,
                    "quotaCode": "L-ABC",
                    "largestJob": {"stage": "sft", "instances": 4},
                    "peak": {"stages": ["baselineEval", "sft"], "instances": 5},
                }
            ],
            "warnings": ["quota is 4; <b>baseline</b> and SFT need 5"],
        },
    }
    page = Page(render_report(run))
    assert "Worst-case GPU cost: $1,788.80 (budget $2,000.00)" in page.visible
    assert "ml.p5.48xlarge 4 4 5 L-ABC" in page.visible
    assert page.find("ul", id="preflight-warnings") and "quota is 4; <b>baseline</b> and SFT need 5" in page.visible
    assert "expected $512.25 for the estimated durations" in page.visible
    assert "RFT training: estimated 9.0 h exceeds its maximum runtime 4 h" in page.visible


def test_a_preflight_without_gpu_jobs_renders_without_a_quota_table_and_none_without_a_section() -> None:
    run = {
        "runId": "r",
        "pipeline": "nova",
        "status": "FAILED",
        "preflight": {
            "datasets": {},
            "cost": {"estimatedUsd": 0.0, "maxUsd": 2000.0, "items": []},
            "quotas": {"status": "not needed"},
        },
    }
    page = Page(render_report(run))
    assert "Before any GPU" in page.visible and not page.find("table", id="quotas")
    assert not page.find("ul", id="preflight-warnings") and "expected $" not in page.visible
    assert "Before any GPU" not in Page(render_report({"runId": "r", "pipeline": "nova", "status": "FAILED"})).visible


def _measured_run() -> dict:
    """An rft_eval run whose evaluations averaged per-sample rewards (n and standard error recorded)."""
    run = copy.deepcopy(SUCCEEDED_RUN)
    for stage, value, stderr in (("baselineEval", 0.13, 0.015), ("sftEval", 0.77, 0.019), ("finalEval", 0.79, 0.018)):
        run["stages"][stage]["metrics"] = {"aggregate_reward_score": value}
        run["stages"][stage]["metricStats"] = {"aggregate_reward_score": {"n": 500, "stderr": stderr}}
    return run


def test_a_mean_over_samples_shows_its_standard_error_and_the_sample_count() -> None:
    page = Page(render_report(_measured_run()))
    row = [a for t, a in page.elements if t == "tr" and a.get("data-metric") == "aggregate_reward_score"]
    assert row, "the metric has a row"
    text = page.visible
    assert "0.77 ± 0.019" in text and "0.79 ± 0.018" in text
    assert re.search(r"samples \(n; ± is the standard error\) 500 500 500", text)


def test_metrics_without_sample_statistics_show_bare_values() -> None:
    text = Page(render_report(SUCCEEDED_RUN)).visible
    assert "±" not in text and "samples (n" not in text


def test_dataset_notes_show_leakage_counts_repeated_rows_and_added_schema_versions() -> None:
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["preflight"] = preflight_with_dataset_notes()
    page = Page(render_report(run))
    notes = page.find("ul", id="dataset-notes")
    assert notes is not None
    assert (
        "Evaluation prompts found verbatim in the training data: sft 17, rft 0 of 54 (e.g. What is <the> holding?)"
        in page.visible
    )
    assert "sft: 2 rows repeat an earlier row exactly (first at line 9)" in page.visible
    assert 'sft: 64 rows had no schemaVersion; the staged copy gives them "bedrock-conversation-2024"' in page.visible


def _billed(run: dict) -> dict:
    """``run`` whose SFT took a failed attempt of unknown time before the job that ran, and whose RFT ran."""
    run = copy.deepcopy(run)
    sft, rft = run["stages"]["sft"], run["stages"]["rft"]
    sft.update(
        instanceType="ml.p5.48xlarge", instanceCount=4, billableSeconds=1800, unknownBillingAttempts=1, actualUsd=50.5
    )
    rft.update(instanceType="ml.p5.48xlarge", instanceCount=2, billableSeconds=3600, actualUsd=40.25)
    run["preflight"] = preflight_with_dataset_notes()
    run["preflight"]["cost"].update(estimatedUsd=300.0, expectedUsd=120.0)
    return run


def test_the_actual_cost_of_every_attempt_is_shown_beside_the_estimate() -> None:
    page = Page(render_report(_billed(SUCCEEDED_RUN)))
    assert "GPU cost (all attempts)" in page.visible
    assert "$50.50 (1 attempt of unknown billable time counted as $0)" in page.visible
    assert "$40.25" in page.visible
    # 1800 s x 4 + 3600 s x 2 = 4 instance-hours
    assert (
        "GPU cost: actual $90.75 (4.00 instance-hours billed, failed attempts included; 1 attempt of unknown "
        "billable time counted as $0); expected $120.00; worst case $300.00" in page.visible
    )


def test_a_bedrock_run_shows_its_road_jobs_models_and_what_became_of_each_provisional_deployment() -> None:
    run = bedrock_run()
    page = Page(render_report(run))
    assert "Road Amazon Bedrock model customization jobs, evaluated through Bedrock inference" in page.visible
    assert page.find("table", id="bedrock-resources")
    final = run["stages"]["finalEval"]["deploymentArn"]
    assert f"Final evaluation provisional deployment {final} serving" in page.visible
    assert f"SFT evaluation provisional deployment {run['stages']['sftEval']['deploymentArn']} deleted" in page.visible
    for stage in ("sft", "rft"):
        assert f"customization job {run['stages'][stage]['jobArn']}" in page.visible
        assert f"custom model {run['stages'][stage]['customModelArn']}" in page.visible
    # No link to SageMaker jobs that never ran
    assert "sagemaker/home" not in render_report(run)


def test_the_sagemaker_road_is_named_and_keeps_its_job_links() -> None:
    page = Page(render_report(SUCCEEDED_RUN))
    assert "Road Amazon SageMaker training jobs" in page.visible
    assert page.find("table", id="bedrock-resources") == []
    assert "sagemaker/home?region=us-east-1#/jobs/nova-weekly-sft-1" in render_report(SUCCEEDED_RUN)
