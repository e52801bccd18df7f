"""Preflight on the Bedrock road: record limits and media rules, Bedrock quotas, the cost in Bedrock's units."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.pipeline import catalog, preflight, quotas
from lambdas.pipeline.datasets import Rules, validate_stream
from lambdas.pipeline.preflight import PreflightError, bedrock_cost, estimate_cost, run_preflight
from lambdas.pipeline.recipes import load_template
from lambdas.pipeline.schema import DatasetReport, Plan
from lambdas.reward.config import reward_function
from lambdas.reward.presets import load_preset
from lambdas.reward.verify import verify_grader
from tests.unit.pipeline import samples

BEDROCK = Rules(model="nova-2-lite", platform="bedrock")
# Bedrock quotas as Service Quotas could name them; matched by the words of their names.
JOBS = "(Model customization) Concurrent model customization jobs"
MODELS = "(Model customization) Custom models per account"
DEPLOYMENTS = "(Model customization) Custom model deployments per account"
SFT_RECORDS = "(Model customization) Sum of training and validation records for a Nova 2 Lite Fine-tuning job"
RFT_RECORDS = (
    "(Model customization) Sum of training and validation records for a Nova 2 Lite Reinforcement fine-tuning job"
)
LITE_RECORDS = "(Model customization) Sum of training and validation records for a Nova Lite V1 Fine-tuning job"


def _rows(kind: str, count: int) -> bytes:
    rows = {"sft": samples.sft_rows, "rft": samples.rft_rows, "gen_qa": samples.eval_rows}[kind](count)
    return samples.jsonl(rows)


def _problems(kind: str, count: int, rules: Rules = BEDROCK) -> list[str]:
    return validate_stream(io.BytesIO(_rows(kind, count)), kind, rules=rules).problems()


# -- datasets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "model", "least"),
    [("sft", "nova-2-lite", 200), ("rft", "nova-2-lite", 100), ("sft", "nova-lite", 8), ("sft", "nova-micro", 8)],
)
def test_a_training_file_needs_bedrocks_least_records(kind: str, model: str, least: int) -> None:
    rules = Rules(model=model, platform="bedrock")
    assert _problems(kind, least, rules) == []
    (problem,) = _problems(kind, least - 1, rules)
    assert problem.startswith(f"{least - 1:,} valid rows; a Bedrock {kind.upper()} job on {model} takes at least")
    assert f"({least:,} to 20,000: Bedrock's limit" in problem


def test_a_training_file_holds_at_most_20000_records() -> None:
    line = samples.jsonl(samples.rft_rows(1))
    assert validate_stream(io.BytesIO(line * 20_000), "rft", rules=BEDROCK).problems() == []
    (problem,) = validate_stream(io.BytesIO(line * 20_001), "rft", rules=BEDROCK).problems()
    assert problem.startswith("20,001 valid rows; a Bedrock RFT job on nova-2-lite takes at most 20,000 records")


def test_the_accounts_record_quota_replaces_the_documented_most() -> None:
    rules = Rules(
        model="nova-2-lite", platform="bedrock", max_rows=250, limit_source=f"the account's quota {SFT_RECORDS!r}"
    )
    assert _problems("sft", 250, rules) == []
    (problem,) = _problems("sft", 251, rules)
    assert "takes at most 250 records (200 to 250: the account's quota" in problem and SFT_RECORDS in problem


def test_the_sagemaker_road_keeps_its_batch_floor_and_has_no_most() -> None:
    rules = Rules(model="nova-2-lite", batch_size=32)
    assert _problems("sft", 32, rules) == [] and _problems("rft", 100, rules) == []
    report = validate_stream(io.BytesIO(_rows("sft", 40)), "sft", rules=rules)
    assert report.as_dict()["maxRows"] is None and report.min_rows == 32


def test_evaluation_files_have_no_bedrock_record_limits() -> None:
    assert _problems("gen_qa", 5) == []
    (problem,) = _problems("gen_qa", 4)
    assert problem == "4 valid rows; a gen_qa dataset needs at least 5"


def _image_row(uri: str, fmt: str = "png") -> dict:
    row = samples.sft_rows(1)[0]
    image = {"image": {"format": fmt, "source": {"s3Location": {"uri": uri, "bucketOwner": samples.ACCOUNT}}}}
    row["messages"][0]["content"].append(image)
    return row


def test_media_must_sit_in_the_bucket_bedrock_trains_from() -> None:
    rules = Rules(model="nova-2-lite", platform="bedrock", media_bucket=samples.ARTIFACTS_BUCKET)
    inside = _image_row(f"s3://{samples.ARTIFACTS_BUCKET}/media/cat.png")
    outside = _image_row(f"s3://{samples.DATA_BUCKET}/media/cat.png")
    body = samples.jsonl([inside] * 200 + [outside])
    report = validate_stream(io.BytesIO(body), "sft", rules=rules)
    assert report.error_count == 1
    (error,) = report.errors
    assert error.line == 201
    assert str(error).startswith("line 201: messages[0].content[1].image.source.s3Location.uri: ")
    assert f"is outside s3://{samples.ARTIFACTS_BUCKET}, the bucket of the dataset copy Bedrock trains on" in str(error)


def test_nova_2_on_bedrock_reads_fewer_image_formats_than_on_sagemaker() -> None:
    row = _image_row(f"s3://{samples.ARTIFACTS_BUCKET}/media/cat.webp", fmt="webp")
    body = samples.jsonl([row] * 200)
    assert validate_stream(io.BytesIO(body), "sft", rules=Rules(model="nova-2-lite")).error_count == 0
    report = validate_stream(io.BytesIO(body), "sft", rules=BEDROCK)
    assert str(report.errors[0]) == (
        'line 1: messages[0].content[1].image.format: is "webp", expected one of gif, jpeg, png on Bedrock for '
        "nova-2-lite"
    )


def test_validation_counts_the_characters_of_prompts_and_answers() -> None:
    rows = samples.sft_rows(3)
    expected_answers = sum(len(r["messages"][1]["content"][0]["text"]) for r in rows)
    expected_text = expected_answers + sum(
        len(r["system"][0]["text"]) + len(r["messages"][0]["content"][0]["text"]) for r in rows
    )
    bad = b'{"messages": "not a list"}\n'  # invalid rows are not counted
    report = validate_stream(io.BytesIO(samples.jsonl(rows) + bad), "sft")
    assert (report.text_chars, report.answer_chars) == (expected_text, expected_answers)
    qa = samples.eval_rows(2)
    report = validate_stream(io.BytesIO(samples.jsonl(qa)), "gen_qa")
    assert report.answer_chars == sum(len(r["response"]) for r in qa)
    assert report.text_chars == report.answer_chars + sum(len(r["query"]) + len(r["system"]) for r in qa)


# -- quotas --------------------------------------------------------------------------------------------


def _bedrock(plan: Plan) -> Plan:
    return plan.model_copy(update={"platform": "bedrock"})


def _fixed(values: Mapping[str, float]):
    def lookup(names: Any, service_code: str = "sagemaker") -> dict:
        assert names is None and service_code == "bedrock"
        return {n: {"value": v, "code": f"L-{i:08d}", "source": "applied"} for i, (n, v) in enumerate(values.items())}

    return lookup


ENOUGH = {JOBS: 2, MODELS: 100, DEPLOYMENTS: 10, SFT_RECORDS: 20_000, RFT_RECORDS: 20_000, LITE_RECORDS: 10}


def test_bedrock_quotas_that_suffice_pass_and_no_gpu_quota_is_read() -> None:
    problems, summary = quotas.check_quotas(_bedrock(samples.plan()), _fixed(ENOUGH))
    assert problems == [] and summary.status == "checked" and summary.instanceTypes == []
    found = {q.quotaName: q.needed for q in summary.bedrock}
    # One job at a time, two custom models, two candidate deployments plus the serving one; the record floors.
    assert found == {JOBS: 1, MODELS: 2, DEPLOYMENTS: 3, SFT_RECORDS: 200, RFT_RECORDS: 100}
    assert quotas.record_limits(summary) == {"sft": (20_000, SFT_RECORDS), "rft": (20_000, RFT_RECORDS)}


def test_quotas_are_told_apart_by_the_words_after_their_category() -> None:
    # Sorted first, but a quota on import jobs, not on customization jobs.
    other = {"(Model customization) Concurrent model import jobs": 0}
    _, summary = quotas.check_quotas(_bedrock(samples.plan()), _fixed({**other, **ENOUGH}))
    assert [q.quotaName for q in summary.bedrock][0] == JOBS
    _, summary = quotas.check_quotas(_bedrock(samples.plan()), _fixed({**other, LITE_RECORDS: 10}))
    assert all(q.quotaName is None for q in summary.bedrock)  # Nova Lite's records are not Nova 2 Lite's


def test_a_bedrock_quota_the_run_would_exceed_is_a_problem_naming_it_and_its_value() -> None:
    problems, _ = quotas.check_quotas(_bedrock(samples.plan()), _fixed({**ENOUGH, DEPLOYMENTS: 2}))
    (problem,) = problems
    assert problem.startswith(f"Bedrock quota {DEPLOYMENTS!r} (L-00000002) is 2 in this account and region;")
    assert "the run needs 3 on-demand custom model deployments" in problem


def test_fewer_stages_need_less() -> None:
    plan = _bedrock(samples.plan(stages={"rft": False, "deploy": False}))
    problems, summary = quotas.check_quotas(plan, _fixed({**ENOUGH, MODELS: 1, DEPLOYMENTS: 1}))
    assert problems == []
    assert {q.quotaName: q.needed for q in summary.bedrock}[DEPLOYMENTS] == 1


def test_unread_bedrock_quotas_are_a_warning_not_a_failure() -> None:
    def failing(names: Any, service_code: str = "sagemaker") -> dict:
        raise quotas.QuotaLookupError("ListServiceQuotas failed: AccessDeniedException: no", {JOBS: {"value": 0}})

    problems, summary = quotas.check_quotas(_bedrock(samples.plan()), failing)
    (problem,) = problems  # what was read before the failure is still checked
    assert problem.startswith(f"Bedrock quota {JOBS!r} is 0")
    assert summary.status == "partly checked"
    assert summary.reason is not None and "not read: ListServiceQuotas failed: AccessDeniedException" in summary.reason
    _, summary = quotas.check_quotas(_bedrock(samples.plan()), _fixed({}))
    assert summary.status == "unchecked" and "Service Quotas lists no Bedrock quota for" in (summary.reason or "")


def test_the_service_quotas_lookup_reads_every_bedrock_quota_applied_then_default() -> None:
    client = boto3.client("service-quotas", region_name="us-east-1")
    stub = Stubber(client)
    applied = {"Quotas": [{"QuotaName": JOBS, "QuotaCode": "L-A", "Value": 3.0}]}
    default = {"Quotas": [{"QuotaName": JOBS, "QuotaCode": "L-A", "Value": 1.0}, {"QuotaName": MODELS, "Value": 100.0}]}
    stub.add_response("list_service_quotas", applied, {"ServiceCode": "bedrock", "MaxResults": 100})
    stub.add_response("list_aws_default_service_quotas", default, {"ServiceCode": "bedrock", "MaxResults": 100})
    with stub:
        found = quotas.service_quotas_lookup(client)(None, service_code="bedrock")
    stub.assert_no_pending_responses()
    assert found == {
        JOBS: {"value": 3.0, "code": "L-A", "source": "applied"},
        MODELS: {"value": 100.0, "code": None, "source": "default"},
    }


# -- cost ----------------------------------------------------------------------------------------------


def _report(rows: int, text: int, answers: int) -> DatasetReport:
    return DatasetReport(kind="x", rows=rows, bytes=0, invalidLines=0, textChars=text, answerChars=answers)


def test_the_cost_is_priced_in_bedrocks_units_for_a_given_dataset() -> None:
    plan = _bedrock(samples.plan())
    sft_job = plan.jobs.of("sft").model_copy(update={"overrides": {"max_epochs": 3}})
    plan = plan.model_copy(update={"jobs": plan.jobs.model_copy(update={"sft": sft_job})})
    sizes = {name: plan.datasets.require(name).sizeBytes for name in ("sft", "rft", "eval")}
    reports = {"sft": _report(300, 120_000, 20_000), "rft": _report(150, 0, 0), "eval": _report(40, 8_000, 2_000)}
    cost = bedrock_cost(plan, reports)
    prices = catalog.BEDROCK_PRICES["nova-2-lite"]
    by = {(item.stage, item.unit): item for item in cost.items}
    sft = by[("sft", "1K tokens trained")]
    assert sft.quantity == round(sizes["sft"] / 3 * 3 / 1000, 3)
    assert sft.expectedQuantity == round(120_000 / 4 * 3 / 1000, 3)
    assert sft.usd == round(sizes["sft"] / 3 * 3 / 1000 * prices.sft_per_1k_tokens, 2)
    rft = by[("rft", "training hour")]
    hours = plan.jobs.of("rft").maxRuntimeSeconds / 3600
    assert prices.rft_per_hour is not None
    assert rft.quantity == hours and rft.usd == round(hours * prices.rft_per_hour, 2)
    assert by[("sft", "model-month stored")].usd == by[("rft", "model-month stored")].usd == 1.95
    out = by[("finalEval", "1K output tokens")]
    max_tokens = int(load_template("nova-2-lite", "eval").default("max_new_tokens"))
    assert out.quantity == round(40 * max_tokens / 1000, 3) and out.expectedQuantity == round(2_000 / 4 / 1000, 3)
    inp = by[("baselineEval", "1K input tokens")]
    assert inp.expectedQuantity == round(6_000 / 4 / 1000, 3) and inp.quantity == round(sizes["eval"] / 3 / 1000, 3)
    # The baseline calls the base model (US inference profile); the later evaluations the custom models.
    assert (inp.unitUsd, by[("baselineEval", "1K output tokens")].unitUsd) == (0.00033, 0.00275)
    assert (by[("sftEval", "1K input tokens")].unitUsd, out.unitUsd) == (0.0003, 0.0025)
    assert cost.estimatedUsd == round(sum(item.usd for item in cost.items), 2)
    assert cost.expectedUsd == pytest.approx(sum(item.expectedUsd or 0 for item in cost.items), abs=0.011)
    assert all(item.instanceType is None for item in cost.items)
    assert [note for note in cost.priceNotes if "is not a published price" in note] == [
        "rft_per_hour of nova-2-lite ($110.08) is not a published price: Bedrock bills Nova 2 Lite RFT per training "
        "hour but publishes no rate; this stands in the on-demand price of the 2 ml.p5.48xlarge the same RFT (LoRA) "
        "needs on SageMaker training jobs"
    ]


def test_rft_is_charged_per_training_hour_whatever_the_size_of_its_data() -> None:
    """Bedrock bills RFT per training hour: the charge follows rft.maxRuntimeHours, never the file's size or rows."""
    plan = _bedrock(samples.plan())

    def rft_charge(plan: Plan, rows: int, size: int) -> tuple[float | None, float]:
        dataset = plan.datasets.require("rft").model_copy(update={"sizeBytes": size})
        plan = plan.model_copy(update={"datasets": plan.datasets.model_copy(update={"rft": dataset})})
        item = next(
            i
            for i in bedrock_cost(plan, {"rft": _report(rows, rows * 400, 0)}).items
            if i.stage == "rft" and i.unit == "training hour"
        )
        return item.quantity, item.usd

    assert rft_charge(plan, 100, 50_000) == rft_charge(plan, 20_000, 90_000_000)
    rft_job = plan.jobs.of("rft").model_copy(update={"maxRuntimeSeconds": 3 * 3600})
    three_hours = plan.model_copy(update={"jobs": plan.jobs.model_copy(update={"rft": rft_job})})
    price = catalog.BEDROCK_PRICES["nova-2-lite"].rft_per_hour
    assert price is not None and price == 2 * catalog.hourly_price("ml.p5.48xlarge")
    assert rft_charge(three_hours, 100, 50_000) == (3, round(3 * price, 2))


def test_the_nova_1_models_bill_their_custom_models_at_the_base_rates() -> None:
    for key in ("nova-micro", "nova-lite", "nova-pro"):
        prices = catalog.BEDROCK_PRICES[key]
        assert (
            prices.inference(custom=True)
            == prices.inference(custom=False)
            == (
                prices.input_per_1k,
                prices.output_per_1k,
            )
        )
        assert set(prices.unconfirmed) == {"sft_per_1k_tokens", "storage_per_month"} and prices.rft_per_hour is None


def test_without_the_datasets_read_the_evaluations_are_not_yet_priced() -> None:
    cost = estimate_cost(_bedrock(samples.plan()))
    assert {item.stage for item in cost.items} == {"sft", "rft"} and cost.expectedUsd is None
    assert "evaluation inference is estimated once preflight has read the evaluation dataset" in cost.priceNotes


# -- run_preflight on the Bedrock road -------------------------------------------------------------------


@pytest.fixture
def bedrock_datasets(s3: Any) -> None:
    for name, body in (("sft", _rows("sft", 200)), ("rft", _rows("rft", 100)), ("eval", _rows("gen_qa", 20))):
        s3.put_object(Bucket=samples.DATA_BUCKET, Key=f"datasets/{name}.jsonl", Body=body)


def _plan(s3: Any, **changes: Any) -> Plan:
    plan = samples.resolve(samples.run_input(**changes), head_object=lambda b, k: s3.head_object(Bucket=b, Key=k))
    return _bedrock(plan)


def _run(plan: Plan, s3: Any, lookup: Any = None) -> dict:
    summary = run_preflight(
        plan,
        s3=s3,
        grade_batch_for=lambda arn: reward_function(preset="classification"),
        verify_grader=verify_grader,
        grader_spec=lambda name: load_preset(name).spec,
        quota_lookup=lookup or _fixed(ENOUGH),
    )
    return summary.to_json()


def test_a_bedrock_run_passes_preflight_with_its_cost_in_bedrock_units(s3: Any, bedrock_datasets: None) -> None:
    summary = _run(_plan(s3), s3)
    assert summary["datasets"]["sft"]["maxRows"] == 20_000 and summary["datasets"]["sft"]["minRows"] == 200
    assert summary["datasets"]["sft"]["textChars"] > summary["datasets"]["sft"]["answerChars"] > 0
    assert summary["quotas"]["instanceTypes"] == [] and len(summary["quotas"]["bedrock"]) == 5
    units = {(item["stage"], item["unit"]) for item in summary["cost"]["items"]}
    assert ("finalEval", "1K output tokens") in units and ("sft", "1K tokens trained") in units
    assert summary["cost"]["expectedUsd"] <= summary["cost"]["estimatedUsd"] <= 2000
    json.dumps(summary)


def test_a_bedrock_run_over_budget_is_refused_with_its_charges(s3: Any, bedrock_datasets: None) -> None:
    with pytest.raises(PreflightError) as raised:
        _run(_plan(s3, budget={"maxUsd": 50}), s3)
    (problem,) = raised.value.problems
    assert problem.startswith("budget.maxUsd: the worst-case Bedrock cost $")
    assert (
        "exceeds the budget $50.00 (baseline evaluation " in problem
        and "RFT training 4 training hour x $110.08 = $440.32" in problem
    )


def test_the_record_quota_read_from_the_account_limits_the_training_file(s3: Any, bedrock_datasets: None) -> None:
    with pytest.raises(PreflightError) as raised:
        _run(_plan(s3), s3, _fixed({**ENOUGH, RFT_RECORDS: 99}))
    problems = raised.value.problems
    assert any(p.startswith(f"Bedrock quota {RFT_RECORDS!r}") and "is 99" in p for p in problems)
    assert any(
        p.startswith("datasets.rft (rft): 100 valid rows; a Bedrock RFT job on nova-2-lite takes at most 99 records")
        for p in problems
    )


def test_the_budget_line_names_each_charge() -> None:
    plan = _bedrock(samples.plan())
    item = estimate_cost(plan).items[0]
    assert preflight.cost_item_text(item).startswith(
        "SFT training "
    ) and "1K tokens trained x $" in preflight.cost_item_text(item)


def test_the_report_shows_the_bedrock_cost_its_quotas_and_its_price_notes(s3: Any, bedrock_datasets: None) -> None:
    from lambdas.pipeline.report import render_report
    from lambdas.pipeline.schema import RunRecord

    plan = _plan(s3, dryRun=True)
    summary = _run(plan, s3, _fixed({**ENOUGH, DEPLOYMENTS: 5}))
    html = render_report(
        RunRecord.model_validate(
            {
                "runId": plan.runId,
                "pipeline": plan.pipelineName,
                "status": "DRY_RUN",
                "plan": plan.to_json(),
                "preflight": summary,
            }
        )
    )
    assert "Worst-case Bedrock cost: <strong>$" in html and "Worst-case GPU cost" not in html
    assert (
        '<table id="bedrock-quotas">' in html and "(Model customization) Custom model deployments per account" in html
    )
    assert "rft_per_hour of nova-2-lite ($110.08) is not a published price" in html
