"""Evaluation through Bedrock inference: what scoring costs per row, and what bounded concurrency buys.

Run from the repository root:

    python benchmarks/bench_bedrock_eval.py

1. Scoring: the gen_qa metrics of one row (``lambdas.pipeline.genqa.row_scores`` and ``bleu_statistics``) for
   answers and references of 50, 500 and 2,000 words, median of several runs. ROUGE-L is a longest common
   subsequence (quadratic in the length), so long answers cost the most. Target: under 250 ms per row at 2,000
   words, so scoring stays small beside a Converse call of the same row.
2. Invocation: one ``EvaluateOnBedrock`` call (``lambdas.pipeline.bedrock_eval.evaluate``) over 96 rows against a
   simulated Converse that answers after a fixed latency (S3 simulated by moto), at concurrency 1 and 8.
   Target: concurrency 8 at least 5 times the rows per second of concurrency 1.

Exits 1 when a target is missed.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

LATENCY_S = 0.05
ROWS = 96
SCORE_TARGET_MS = 250.0
SPEEDUP_TARGET = 5.0


def _text(words: int, seed: int) -> str:
    vocabulary = [f"w{(i * 7 + seed) % 97}" for i in range(words)]
    return " ".join(vocabulary).capitalize() + "."


def scoring() -> list[tuple[int, float]]:
    from lambdas.pipeline import genqa

    figures = []
    for words in (50, 500, 2000):
        reference, answer = _text(words, 1), _text(words, 3)
        runs = []
        for _ in range(5):
            began = time.perf_counter()
            genqa.row_scores(reference, answer)
            genqa.bleu_statistics(reference, answer)
            runs.append((time.perf_counter() - began) * 1000)
        figures.append((words, statistics.median(runs)))
    return figures


class _Runtime:
    def converse(self, **params: Any) -> dict[str, Any]:
        time.sleep(LATENCY_S)
        query = params["messages"][0]["content"][-1]["text"]
        return {"output": {"message": {"role": "assistant", "content": [{"text": query.upper()}]}}, "stopReason": "x"}


def invocation(concurrency: int) -> float:
    """Rows per second of one evaluate call over :data:`ROWS` rows at ``concurrency``."""
    import boto3
    from moto import mock_aws

    from lambdas.pipeline import bedrock_eval
    from lambdas.pipeline.schema import BedrockEvaluationRequest, JobAttempt
    from tests.unit.pipeline import samples
    from tests.unit.pipeline.test_bedrock_eval import bedrock_plan, put_eval_rows, trained_stages

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=samples.DATA_BUCKET)
        s3.create_bucket(Bucket=samples.ARTIFACTS_BUCKET)
        plan = bedrock_plan()
        put_eval_rows(s3, plan, samples.eval_rows(ROWS))
        raw = bedrock_eval.evaluation_request("baselineEval", plan, trained_stages(), "bench-eval-base-a1")
        request = BedrockEvaluationRequest.model_validate({**raw, "concurrency": concurrency})
        job = JobAttempt(stage="baselineEval", name="bench-eval-base-a1", attempt=1, request=request)
        clients = bedrock_eval.Clients(s3=s3, bedrock=None, runtime=_Runtime(), lambda_=None)
        began = time.perf_counter()
        progress = bedrock_eval.evaluate("baselineEval", plan, job, clients=clients)
        elapsed = time.perf_counter() - began
    if not progress["done"] or progress["processed"] != ROWS:
        raise SystemExit(f"the evaluation did not finish in one call: {progress}")
    return ROWS / elapsed


def main() -> int:
    failed = False
    print(f"{'answer words':>12}  {'scoring ms/row':>14}")
    for words, ms in scoring():
        print(f"{words:>12}  {ms:>14.2f}")
        failed |= words == 2000 and ms > SCORE_TARGET_MS
    serial, parallel = invocation(1), invocation(8)
    print(f"\nConverse latency {LATENCY_S * 1000:.0f} ms, {ROWS} rows")
    print(f"{'concurrency':>12}  {'rows/s':>8}")
    print(f"{1:>12}  {serial:>8.1f}\n{8:>12}  {parallel:>8.1f}")
    speedup = parallel / serial
    print(
        f"speed-up {speedup:.1f}x (target >= {SPEEDUP_TARGET:g}x); 2,000-word scoring target <= {SCORE_TARGET_MS:g} ms"
    )
    failed |= speedup < SPEEDUP_TARGET
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
