"""How the ``legal-tool-calling`` preset ranks answers compared with the legal case study's own reward.

Needs a local copy of the case study's RFT data and of its reward Lambda module
(neither ships with the project; see docs/contracts/reward-lambda.md for where
they are published). Run from the repository root:

    .venv/bin/python benchmarks/legal_rank_correlation.py --data val.jsonl \
        --reward-module lambda_reward_function.py [--rows N]

For each data row, answers are built from its reference: the reference itself
(flat, and wrapped in ``{"Query analysis": ...}`` inside solution tags), and
each kind of damage in :data:`DAMAGES` (wrong, missing, extra or repeated tools,
swapped order, a wrong parameter, invalid JSON, every tool at once, a broken
schema, a wrong ``Type``). Both graders score every answer (the module's
``lambda_grader(samples)``, its prints silenced). Printed: the Spearman rank
correlation over all answers, the mean score of each kind of answer under both,
and the preset's malformed items (which must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from lambdas.reward.engine import compile_spec  # noqa: E402
from lambdas.reward.presets import load_preset  # noqa: E402

BEGIN, END = "<|begin_of_solution|>", "<|end_of_solution|>"
OTHER_TOOLS = ["statute_retrieval", "case_law_search", "compliance_checker", "citation_validator"]
DAMAGES = (
    "wrong tool",
    "missing tool",
    "extra tool",
    "wrong order",
    "wrong parameter",
    "invalid JSON",
    "duplicate tools",
    "all tools at once",
    "schema broken",
    "wrong type",
)


def damaged(reference: dict[str, Any], damage: str) -> str | None:
    """The reference as answer text with one kind of damage, or None when the damage does not apply to it."""
    value = copy.deepcopy(reference)
    tools = value.get("Tools")
    if not isinstance(tools, list) or not tools:
        return None
    if damage == "wrong tool":
        tools[-1]["Tool"] = "unrelated_tool"
    elif damage == "missing tool":
        if len(tools) < 2:
            return None
        tools.pop()
    elif damage == "extra tool":
        tools.append({"Tool": "citation_validator", "Parameters": {"query": "citation"}, "Reasoning": "more"})
    elif damage == "wrong order":
        if len(tools) < 2 or tools[0]["Tool"] == tools[-1]["Tool"]:
            return None
        tools.reverse()
    elif damage == "wrong parameter":
        parameters = tools[0].get("Parameters")
        if not isinstance(parameters, dict) or not parameters:
            return None
        parameters[next(iter(parameters))] = "an unrelated value entirely"
    elif damage == "invalid JSON":
        return json.dumps(value)[:-3]
    elif damage == "duplicate tools":
        value["Tools"] = [tool for tool in tools for _ in range(2)]
    elif damage == "all tools at once":
        tools.extend({"Tool": name, "Parameters": {}, "Reasoning": ""} for name in OTHER_TOOLS)
    elif damage == "schema broken":
        del tools[0]["Reasoning"]
    elif damage == "wrong type":
        value["Type"] = "unrelated_type"
    else:
        raise ValueError(f"unknown damage {damage!r}")
    return json.dumps(value)


def answers_for(reference: dict[str, Any]) -> dict[str, str]:
    """Every kind of answer for one reference, by kind."""
    found = {
        "perfect": json.dumps(reference),
        "perfect, wrapped in tags": f"{BEGIN}```json\n{json.dumps({'Query analysis': reference})}\n```{END}",
    }
    for damage in DAMAGES:
        text = damaged(reference, damage)
        if text is not None:
            found[damage] = text
    return found


def ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        stop = start
        while stop + 1 < len(order) and values[order[stop + 1]] == values[order[start]]:
            stop += 1
        for position in range(start, stop + 1):
            result[order[position]] = (start + stop) / 2 + 1
        start = stop + 1
    return result


def spearman(left: list[float], right: list[float]) -> float:
    a, b = ranks(left), ranks(right)
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    var_a = sum((x - mean_a) ** 2 for x in a)
    var_b = sum((y - mean_b) ** 2 for y in b)
    return cov / (var_a * var_b) ** 0.5 if var_a and var_b else float("nan")


def load_reward_module(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("case_study_reward", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "lambda_grader", None)):
        raise SystemExit(f"{path}: has no lambda_grader(samples) function")
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the case study's RFT JSONL (rows with reference_answer)")
    parser.add_argument("--reward-module", required=True, help="the case study's reward Lambda module (.py)")
    parser.add_argument("--rows", type=int, default=None, help="use the first N rows (default: all)")
    args = parser.parse_args(argv)

    module = load_reward_module(args.reward_module)
    preset = load_preset("legal-tool-calling")
    reward = compile_spec(preset.spec, name=preset.name)
    items: list[dict[str, Any]] = []
    kinds: list[str] = []
    with open(args.data, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    for row in rows[: args.rows]:
        reference = row.get("reference_answer")
        if not isinstance(reference, dict):
            continue
        for kind, text in answers_for(reference).items():
            items.append(
                {
                    "id": f"{row.get('id')}:{kind}",
                    "messages": [*row["messages"], {"role": "assistant", "content": text}],
                    "reference_answer": reference,
                }
            )
            kinds.append(kind)

    ours = reward(copy.deepcopy(items))
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = module.lambda_grader(copy.deepcopy(items))
    our_scores = [float(result["aggregate_reward_score"]) for result in ours]
    their_scores = [float(result["aggregate_reward_score"]) for result in theirs]
    malformed = sum(
        1 for result in ours if any(str(m.get("name", "")).startswith("malformed") for m in result["metrics_list"])
    )

    print(f"rows {len(set(item['id'].rsplit(':', 1)[0] for item in items))}  answers {len(items)}")
    print(f"spearman rank correlation (preset vs case study reward): {spearman(our_scores, their_scores):.3f}")
    print(f"preset malformed items: {malformed}")
    print(f"{'answer':<26}{'n':>5}{'preset':>9}{'case study':>12}")
    for kind in dict.fromkeys(kinds):
        picked = [i for i, k in enumerate(kinds) if k == kind]
        mean_ours = sum(our_scores[i] for i in picked) / len(picked)
        mean_theirs = sum(their_scores[i] for i in picked) / len(picked)
        print(f"{kind:<26}{len(picked):>5}{mean_ours:>9.3f}{mean_theirs:>12.3f}")
    return 0 if malformed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
