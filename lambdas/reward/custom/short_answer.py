"""Short-answer reward: the final answer must match the reference answer, with partial credit for overlap.

An example of reward code written in the published style: a ``lambda_grader(samples)`` that reads
each sample's messages and reference answer and returns ``{"id", "aggregate_reward_score",
"metrics_list"}`` per sample. It runs unchanged as its own Lambda handler (``lambda_handler``
below) and, dropped into ``lambdas/reward/custom/``, under the project's harness.

Score: 1.0 when the normalized final answer equals the normalized reference, else half the
token F1 between them; 0.0 when the sample has no reference.
"""

import re
import string

SCORE_RANGE = (0.0, 1.0)

_ANSWER_MARK = re.compile(r"(?:final answer|answer)\s*[:=]", re.IGNORECASE)
_SOLUTION_TAGS = ("<|begin_of_solution|>", "<|end_of_solution|>")


def lambda_handler(event: list[dict], context: object) -> list[dict]:
    return lambda_grader(event)


def _normalize(text: str) -> str:
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split())


def _final_answer(response: str) -> str:
    start, end = _SOLUTION_TAGS
    if start in response:
        response = response.split(start)[-1]
    if end in response:
        response = response.split(end)[0]
    marks = list(_ANSWER_MARK.finditer(response))
    if marks:
        response = response[marks[-1].end() :]
    # All of the rest is the answer: text padded after the answer costs credit.
    return response.strip()


def _token_f1(answer: str, reference: str) -> float:
    got, want = answer.split(), reference.split()
    if not got or not want:
        return 0.0
    common = 0
    remaining = list(want)
    for token in got:
        if token in remaining:
            remaining.remove(token)
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def lambda_grader(samples: list[dict]) -> list[dict]:
    results: list[dict] = []
    for sample in samples:
        reference = sample.get("reference_answer")
        if reference is None:
            reference = sample.get("metadata", {}).get("reference_answer")
        if isinstance(reference, dict):
            reference = reference.get("answer")
        last = sample["messages"][-1]
        assert last["role"] == "assistant", "the last message must be the model's response"
        response = last["content"]
        if isinstance(response, list):
            response = "\n".join(part["text"] for part in response if "text" in part)
        if reference is None:
            print(f"no reference answer for sample {sample.get('id')}")
            results.append({"id": sample.get("id"), "aggregate_reward_score": 0.0, "metrics_list": []})
            continue
        answer = _normalize(_final_answer(response))
        expected = _normalize(str(reference))
        exact = 1.0 if answer and answer == expected else 0.0
        f1 = _token_f1(answer, expected)
        results.append(
            {
                "id": sample.get("id"),
                "aggregate_reward_score": exact if exact else 0.5 * f1,
                "metrics_list": [
                    {"name": "exact_match", "value": exact, "type": "Reward"},
                    {"name": "token_f1", "value": f1, "type": "Metric"},
                    {"name": "answer_chars", "value": float(len(answer)), "type": "Metric"},
                ],
            }
        )
    return results
