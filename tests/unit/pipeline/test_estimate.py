"""Job duration estimates: the default runtime they raise, the runtime warning and the expected cost."""

from __future__ import annotations

import pytest

from lambdas.pipeline import estimate, recipes
from lambdas.pipeline.preflight import estimate_cost
from tests.unit.pipeline import samples

NOVA_2_SFT = recipes.load_template("nova-2-lite", "sft")
NOVA_2_RFT = recipes.load_template("nova-2-lite", "rft")
NOVA_1_SFT = recipes.load_template("nova-lite", "sft")
EVAL = recipes.load_template("nova-2-lite", "eval")


def test_step_counted_training_is_setup_plus_samples_shared_by_the_instances() -> None:
    guess = estimate.job_hours(NOVA_2_SFT, {"max_steps": 900, "global_batch_size": 64}, 8)
    assert guess is not None
    assert guess.hours == pytest.approx(0.5 + 900 * 64 * 1.0 / 8 / 3600)
    assert guess.basis == "900 steps of 64 at 1 s per sample on 8 instance(s) + 0.5 h setup"
    doubled = estimate.job_hours(NOVA_2_SFT, {"max_steps": 900, "global_batch_size": 64}, 16)
    assert doubled is not None and doubled.hours - 0.5 == pytest.approx((guess.hours - 0.5) / 2)


def test_rft_counts_every_rollout_and_uses_the_project_default_steps() -> None:
    guess = estimate.job_hours(NOVA_2_RFT, {"number_generation": 8}, 4)
    assert guess is not None
    assert guess.hours == pytest.approx(0.5 + 40 * 64 * 8 * 4.0 / 4 / 3600)
    assert guess.basis.startswith("40 steps of 64 x 8 rollouts")


def test_epoch_counted_training_and_evaluation_need_the_row_count() -> None:
    assert estimate.job_hours(NOVA_1_SFT, {}, 4) is None
    assert estimate.job_hours(EVAL, {}, 1) is None
    nova_1 = estimate.job_hours(NOVA_1_SFT, {"max_epochs": 3}, 4, rows=1000)
    assert nova_1 is not None and nova_1.basis.startswith("3 epochs of 1000 rows = 48 steps of 64")
    assert nova_1.hours == pytest.approx(0.5 + 48 * 64 / 4 / 3600)
    evaluation = estimate.job_hours(EVAL, {}, 1, rows=7200)
    assert evaluation is not None and evaluation.hours == pytest.approx(0.25 + 2.0)


def test_the_default_runtime_grows_with_the_job_and_never_shrinks() -> None:
    assert estimate.default_runtime_hours(NOVA_2_SFT, {}, 4) == NOVA_2_SFT.max_runtime_hours
    assert estimate.default_runtime_hours(NOVA_1_SFT, {}, 4) == NOVA_1_SFT.max_runtime_hours
    long = estimate.default_runtime_hours(NOVA_2_SFT, {"max_steps": 20000}, 4)
    assert long == pytest.approx(1.5 * (0.5 + 20000 * 32 / 4 / 3600), abs=0.25) and long % 0.25 == 0


def test_a_run_without_max_runtime_gets_a_runtime_its_steps_fit_in() -> None:
    plan = samples.plan(sft={"overrides": {"max_steps": 20000}})
    assert plan.jobs.sft is not None
    assert plan.jobs.sft.maxRuntimeSeconds == int(
        estimate.default_runtime_hours(NOVA_2_SFT, {"max_steps": 20000}, 4) * 3600
    )
    assert estimate_cost(plan).runtimeWarnings == []
    capped = samples.plan(rft={"overrides": {"max_steps": 100000, "number_generation": 16}})
    assert capped.jobs.rft is not None and capped.jobs.rft.maxRuntimeSeconds == 28 * 24 * 3600
    (warning,) = estimate_cost(capped).runtimeWarnings
    assert warning.startswith("RFT training: estimated ") and "exceeds its maximum runtime 672 h" in warning


def test_a_max_runtime_shorter_than_the_estimate_is_a_warning_naming_the_field() -> None:
    plan = samples.plan(sft={"overrides": {"max_steps": 2000}, "maxRuntimeHours": 1})
    (warning,) = estimate_cost(plan, {"sft": 100, "rft": 100, "eval": 100}).runtimeWarnings
    guess = estimate.job_hours(NOVA_2_SFT, {"max_steps": 2000}, 4)
    assert guess is not None
    assert warning == (
        f"SFT training: estimated {guess.hours:.1f} h ({guess.basis}) exceeds its maximum runtime 1 h, so the job "
        f"would be stopped unfinished; set sft.maxRuntimeHours to at least {guess.suggested_runtime_hours():g} "
        "(or train fewer steps)"
    )


def test_the_expected_cost_charges_the_estimated_hours_once_every_job_can_be_estimated() -> None:
    plan = samples.plan()
    assert estimate_cost(plan).expectedUsd is None  # the evaluations need the row count
    cost = estimate_cost(plan, {"sft": 100, "rft": 100, "eval": 3600})
    for item in cost.items:
        assert item.estimatedHours is not None and item.expectedUsd is not None and item.instanceCount is not None
        assert item.expectedUsd == pytest.approx(
            55.04 * item.instanceCount * min(item.estimatedHours, item.maxHours), rel=0.01
        )
    assert cost.expectedUsd == pytest.approx(sum(i.expectedUsd or 0 for i in cost.items), abs=0.01)
    assert cost.expectedUsd is not None and cost.expectedUsd < cost.estimatedUsd
