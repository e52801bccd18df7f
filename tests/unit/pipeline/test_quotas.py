"""GPU instance quotas: needs per phase, the Service Quotas lookup, and what preflight makes of them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.pipeline import quotas
from lambdas.pipeline.quotas import QuotaLookupError, instance_needs, service_quotas_lookup
from lambdas.pipeline.schema import Plan
from tests.unit.pipeline import samples

P5 = "ml.p5.48xlarge"
P5_QUOTA = "ml.p5.48xlarge for training job usage"


def check_quotas(plan: Any, lookup: Any) -> tuple[list[str], dict]:
    """The problems, and the summary as it goes into the run state (JSON)."""
    problems, summary = quotas.check_quotas(plan, lookup)
    return problems, summary.to_json()


def _quota(name: str, value: float, code: str = "L-TEST0001") -> dict:
    return {"ServiceCode": "sagemaker", "QuotaName": name, "QuotaCode": code, "Value": value}


def _fixed(values: dict[str, float]):
    def lookup(names: Any) -> dict:
        return {n: {"value": values[n], "code": "L-TEST0001", "source": "applied"} for n in names if n in values}

    return lookup


def _final_evaluation_only() -> Plan:
    return samples.plan(stages={"baselineEval": False}, resumeFrom=samples.resume("finalEval", samples.RFT_CHECKPOINT))


def test_needs_take_the_largest_job_and_the_busiest_phase() -> None:
    need = instance_needs(samples.plan())[P5]
    # baseline eval (1) beside SFT (4), SFT eval (1) beside RFT (4), final eval (1)
    assert (need.largest, need.largest_stage) == (4, "sft")
    assert (need.peak, need.peak_stages) == (5, ("baselineEval", "sft"))


def test_needs_count_only_the_stages_that_run() -> None:
    need = instance_needs(samples.plan(stages={"baselineEval": False}, rft={"instanceCount": 8}))[P5]
    assert (need.largest, need.largest_stage) == (8, "rft")
    assert (need.peak, need.peak_stages) == (9, ("sftEval", "rft"))
    assert instance_needs(_final_evaluation_only())[P5].peak == 1


def test_enough_quota_passes_without_warnings() -> None:
    problems, summary = check_quotas(samples.plan(), _fixed({P5_QUOTA: 5}))
    assert problems == [] and summary["status"] == "checked" and summary["warnings"] == []
    [entry] = summary["instanceTypes"]
    assert entry == {
        "instanceType": P5,
        "quotaName": P5_QUOTA,
        "quotaCode": "L-TEST0001",
        "quota": 5,
        "source": "applied",
        "largestJob": {"stage": "sft", "instances": 4},
        "peak": {"stages": ["baselineEval", "sft"], "instances": 5},
    }


def test_a_job_larger_than_its_quota_is_a_problem_naming_the_quota_and_the_field() -> None:
    problems, _ = check_quotas(samples.plan(rft={"instanceCount": 8}), _fixed({P5_QUOTA: 4}))
    assert problems == [
        "quota 'ml.p5.48xlarge for training job usage' (L-TEST0001) is 4 in this account and region; the RFT "
        "training job alone needs 8 x ml.p5.48xlarge: request an increase in the Service Quotas console or lower "
        "rft.instanceCount"
    ]


def test_a_zero_quota_stops_even_the_evaluation() -> None:
    problems, _ = check_quotas(_final_evaluation_only(), _fixed({P5_QUOTA: 0}))
    assert len(problems) == 1 and "is 0" in problems[0] and "final evaluation job alone needs 1" in problems[0]
    assert "choose another evaluation.instanceType" in problems[0]


def test_jobs_that_contend_for_a_quota_are_a_warning_not_a_problem() -> None:
    problems, summary = check_quotas(samples.plan(), _fixed({P5_QUOTA: 4}))
    assert problems == []
    assert summary["warnings"] == [
        "quota 'ml.p5.48xlarge for training job usage' (L-TEST0001) is 4; baseline evaluation and SFT training run "
        "at the same time and need 5 x ml.p5.48xlarge together: they will run one after the other (the later job "
        "retries until capacity frees up), which lengthens the run; a quota of 5 lets them run side by side"
    ]


def test_an_unreadable_quota_is_reported_unchecked_and_never_fails_the_run() -> None:
    def denied(names: Any) -> dict:
        raise QuotaLookupError("ListServiceQuotas failed: AccessDeniedException: not allowed")

    problems, summary = check_quotas(samples.plan(), denied)
    assert problems == []
    assert summary["status"] == "unchecked" and "AccessDeniedException" in summary["reason"]
    assert summary["instanceTypes"][0]["quota"] is None and summary["instanceTypes"][0]["peak"]["instances"] == 5

    def partly(names: Any) -> dict:
        raise QuotaLookupError(
            "ListAWSDefaultServiceQuotas failed: TooManyRequestsException: slow down",
            {P5_QUOTA: {"value": 2, "code": "L-P5", "source": "applied"}},
        )

    # what was read before the failure is still checked; the rest is named with the failure
    plan = samples.plan(model="nova-lite", sft={"instanceType": "ml.p4d.24xlarge"}, stages={"rft": False})
    assert sorted(instance_needs(plan)) == ["ml.p4d.24xlarge", P5]
    problems, summary = check_quotas(plan, partly)
    assert problems == [] and summary["status"] == "partly checked"
    assert summary["reason"] == (
        "'ml.p4d.24xlarge for training job usage' not read: ListAWSDefaultServiceQuotas "
        "failed: TooManyRequestsException: slow down"
    )
    problems, _ = check_quotas(samples.plan(), partly)
    assert len(problems) == 1 and "is 2" in problems[0] and "alone needs 4" in problems[0]

    problems, summary = check_quotas(samples.plan(), _fixed({}))
    assert problems == [] and summary["status"] == "unchecked"
    assert summary["reason"] == "Service Quotas lists no 'ml.p5.48xlarge for training job usage' in this region"


# -- the Service Quotas lookup, against botocore's model ---------------------------------------------------


@pytest.fixture
def client() -> Any:
    return boto3.client("service-quotas", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_the_lookup_pages_until_every_name_is_found(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_response(
            "list_service_quotas",
            {"Quotas": [_quota("ml.g5.12xlarge for training job usage", 2)], "NextToken": "t1"},
            {"ServiceCode": "sagemaker", "MaxResults": 100},
        )
        stub.add_response(
            "list_service_quotas",
            {"Quotas": [_quota(P5_QUOTA, 8, "L-P5")], "NextToken": "t2"},
            {"ServiceCode": "sagemaker", "MaxResults": 100, "NextToken": "t1"},
        )
        found = service_quotas_lookup(client)([P5_QUOTA])
        stub.assert_no_pending_responses()  # the third page was never requested
    assert found == {P5_QUOTA: {"value": 8, "code": "L-P5", "source": "applied"}}


def test_names_without_an_applied_value_fall_back_to_the_aws_default(client: Any) -> None:
    g5 = "ml.g5.12xlarge for training job usage"
    with Stubber(client) as stub:
        stub.add_response(
            "list_service_quotas", {"Quotas": [_quota(g5, 2)]}, {"ServiceCode": "sagemaker", "MaxResults": 100}
        )
        stub.add_response(
            "list_aws_default_service_quotas",
            {"Quotas": [_quota(P5_QUOTA, 0, "L-P5")]},
            {"ServiceCode": "sagemaker", "MaxResults": 100},
        )
        found = service_quotas_lookup(client)([P5_QUOTA, g5])
    assert found == {
        g5: {"value": 2, "code": "L-TEST0001", "source": "applied"},
        P5_QUOTA: {"value": 0, "code": "L-P5", "source": "default"},
    }


def test_a_service_error_becomes_a_lookup_error_naming_the_operation(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_client_error("list_service_quotas", "AccessDeniedException", "no servicequotas:ListServiceQuotas")
        with pytest.raises(QuotaLookupError, match="ListServiceQuotas failed: AccessDeniedException"):
            service_quotas_lookup(client)([P5_QUOTA])


def test_a_failure_after_some_quotas_were_read_keeps_them(client: Any) -> None:
    g5 = "ml.g5.12xlarge for training job usage"
    with Stubber(client) as stub:
        stub.add_response(
            "list_service_quotas",
            {"Quotas": [_quota(P5_QUOTA, 8, "L-P5")]},
            {"ServiceCode": "sagemaker", "MaxResults": 100},
        )
        stub.add_client_error("list_aws_default_service_quotas", "TooManyRequestsException", "slow down")
        with pytest.raises(QuotaLookupError, match="ListAWSDefaultServiceQuotas failed") as caught:
            service_quotas_lookup(client)([P5_QUOTA, g5])
    assert caught.value.found == {P5_QUOTA: {"value": 8, "code": "L-P5", "source": "applied"}}


def test_the_quota_name_follows_the_sagemaker_naming() -> None:
    assert quotas.quota_name("ml.g5.48xlarge") == "ml.g5.48xlarge for training job usage"
