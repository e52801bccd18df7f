"""The quality gate: may the candidate be imported and deployed?

The candidate is the RFT model, unless the SFT model scored higher on ``gate.metric``: both
were evaluated on the run's evaluation dataset (the SFT evaluation beside RFT, the final
evaluation after it), so an RFT that regresses does not replace the SFT model, and the SFT
checkpoint is the one imported (``GateDecision.candidate``). The candidate passes only if its
``gate.metric``

1. reaches ``minScore``;
2. beats the baseline by at least ``minGainOverBaseline``; with ``minGainOverBaseline > 0`` a
   missing baseline (its evaluation failed, or it lacks the metric) fails the check (fail closed);
3. with ``mustBeatDeployed``, is strictly higher than the metric recorded for the model this
   pipeline deployed last (its champion record, ``champions/<pipeline>.json``), measured on the
   same evaluation dataset version (the dataset's ETag). With no champion yet the check passes and
   says so; a champion without that metric, or measured on another version of the evaluation
   dataset, fails it (fail closed: the comparison the gate demands cannot be made).

The thresholds are the plan's: "Validate run" raised any the run left unset to the deployment's run
policy (:mod:`lambdas.pipeline.policy`) and refused any below it.

Higher is better for every metric the evaluations report. A rejected candidate ends the
run as ``GATE_REJECTED`` (a successful execution without a deployment).
"""

from __future__ import annotations

from typing import Literal

from lambdas.pipeline.schema import (
    Champion,
    ChampionSummary,
    CollectedMetrics,
    GateCheck,
    GateDecision,
    GateSettings,
)


def _value(metrics: dict[str, float] | None, name: str) -> float | None:
    return None if metrics is None else metrics.get(name)


def apply_gate(
    *,
    gate: GateSettings,
    metrics: CollectedMetrics,
    champion: Champion | None,
    eval_etag: str | None = None,
) -> GateDecision:
    """``{"passed", "reasons", "checks", "champion"}``; ``reasons`` explain the decision."""
    name = gate.metric
    chosen = metrics.candidate
    candidate_column = metrics.column(chosen)
    candidate = _value(candidate_column, name)
    checks: list[GateCheck] = []

    def check(rule: str, passed: bool, detail: str) -> None:
        checks.append(GateCheck(rule=rule, passed=passed, detail=detail))

    if candidate is None:
        reported = ", ".join(sorted(candidate_column or {})) or "nothing"
        check("metric", False, f"{name} is not among the final evaluation's metrics (reported: {reported})")
        return _decision(checks, champion, chosen)

    sft = _value(metrics.table.sft, name) if chosen == "rft" else None
    if sft is not None:
        better = sft > candidate
        check(
            "bestCandidate",
            True,
            f"SFT {name} {sft:.4g} > RFT {candidate:.4g} on the same evaluation set: the SFT model is the "
            "candidate (the RFT model regressed)"
            if better
            else f"RFT {name} {candidate:.4g} >= SFT {sft:.4g} on the same evaluation set: the RFT model is the "
            "candidate",
        )
        if better:
            chosen, candidate = "sft", sft

    min_score = gate.minScore
    check(
        "minScore",
        candidate >= min_score,
        f"{name} {candidate:.4g} {'>=' if candidate >= min_score else '<'} minScore {min_score:.4g}",
    )

    baseline = _value(metrics.table.baseline, name)
    min_gain = gate.minGainOverBaseline
    if baseline is None:
        failure = metrics.failed.get("baseline")
        if failure:
            why = f"the baseline evaluation failed ({failure})"
        elif metrics.table.baseline:
            reported = ", ".join(sorted(metrics.table.baseline))
            why = f"the baseline evaluation reported no {name} (reported: {reported})"
        else:
            why = "no baseline evaluation to compare with"
        if min_gain > 0:
            # Fail closed: the gain the gate demands cannot be shown without a baseline.
            check(
                "minGainOverBaseline",
                False,
                f"{why}: cannot compare with minGainOverBaseline {min_gain:.4g} (baseline missing)",
            )
        else:
            check("minGainOverBaseline", True, why)
    else:
        gain = candidate - baseline
        check(
            "minGainOverBaseline",
            gain >= min_gain,
            f"gain over the baseline {gain:+.4g} ({baseline:.4g} -> {candidate:.4g}) "
            f"{'>=' if gain >= min_gain else '<'} minGainOverBaseline {min_gain:.4g}",
        )

    if gate.mustBeatDeployed:
        if champion is None:
            check("mustBeatDeployed", True, "no model deployed by this pipeline yet")
        else:
            deployed = _value(champion.metrics, name)
            who = f"the deployed model of run {champion.runId}"
            if deployed is None:
                recorded = ", ".join(sorted(champion.metrics)) or "nothing"
                check(
                    "mustBeatDeployed",
                    False,
                    f"{who} has no recorded {name} (recorded: {recorded}): cannot compare (champion metric missing)",
                )
            elif eval_etag and champion.evalDatasetEtag != eval_etag:
                measured = f"ETag {champion.evalDatasetEtag}" if champion.evalDatasetEtag else "an unrecorded version"
                check(
                    "mustBeatDeployed",
                    False,
                    f"{who} was measured on another version of the evaluation dataset ({measured}, this run: "
                    f"ETag {eval_etag}): cannot compare {name} {candidate:.4g} with {deployed:.4g}",
                )
            else:
                check(
                    "mustBeatDeployed",
                    candidate > deployed,
                    f"{name} {candidate:.4g} {'>' if candidate > deployed else '<='} {deployed:.4g} of {who}",
                )
    return _decision(checks, champion, chosen)


def _decision(checks: list[GateCheck], champion: Champion | None, candidate: Literal["sft", "rft"]) -> GateDecision:
    passed = all(c.passed for c in checks)
    reasons = [c.detail for c in checks if passed or not c.passed]
    summary = None
    if champion is not None:
        summary = ChampionSummary(
            runId=champion.runId,
            modelArn=champion.modelArn,
            deploymentArn=champion.deploymentArn,
            metrics=champion.metrics,
        )
    return GateDecision(passed=passed, reasons=reasons, checks=checks, champion=summary, candidate=candidate)
