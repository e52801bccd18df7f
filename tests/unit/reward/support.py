"""Builders for reward-Lambda request items and RFT dataset rows used across the reward tests."""

from __future__ import annotations

import json
from typing import Any

from lambdas.reward.engine import RewardFunction, compile_spec
from lambdas.reward.items import Sample, parse_item
from lambdas.reward.presets import load_preset

SO_SYSTEM = "Classify the Stack Overflow question as HQ, LQ_EDIT or LQ_CLOSE."
LABELS = ["HQ", "LQ_EDIT", "LQ_CLOSE"]

LEGAL_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_case_law",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "jurisdiction": {"type": "string"},
                    "limit": {"type": "integer"},
                },
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_statute",
            "parameters": {"type": "object", "properties": {"code": {"type": "string"}, "section": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "summarize_document",
            "parameters": {"type": "object", "properties": {"document_id": {"type": "string"}}},
        },
    },
]


def item(response: Any, reference: Any = None, *, item_id: Any = "r-1", prompt: str = "question", **extra: Any) -> dict:
    """A request item whose last assistant turn is ``response`` (string or list of parts)."""
    built: dict[str, Any] = {
        "id": item_id,
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
    }
    if reference is not None:
        built["reference_answer"] = reference
    built.update(extra)
    return built


def sample_of(raw: object, needs_reference: bool = False, index: int = 0) -> Sample:
    """The parsed sample of a request item that must parse (a reason string fails the test)."""
    parsed = parse_item(index, raw, needs_reference)
    assert isinstance(parsed, Sample), parsed
    return parsed


def grade_one(reward: RewardFunction, response: Any, reference: Any = None, **extra: Any) -> dict:
    return reward([item(response, reference, **extra)])[0]


def score(reward: RewardFunction, response: Any, reference: Any = None, **extra: Any) -> float:
    return grade_one(reward, response, reference, **extra)["aggregate_reward_score"]


def metrics_of(result: dict) -> dict[str, float]:
    return {m["name"]: m["value"] for m in result["metrics_list"]}


def preset(name: str) -> RewardFunction:
    loaded = load_preset(name)
    return compile_spec(loaded.spec, name=loaded.name)


def so_rows() -> list[dict]:
    questions = [
        ("How do I reverse a list in Python without copying it?", "HQ"),
        ("plz help my code not work", "LQ_CLOSE"),
        ("Why does this loop never end? [code without formatting]", "LQ_EDIT"),
        ("What is the difference between a process and a thread in Linux?", "HQ"),
        ("give me teh codez for login page", "LQ_CLOSE"),
        ("sql query returns wrong rows when joining two tables", "LQ_EDIT"),
    ]
    return [
        {
            "id": f"so-{i}",
            "messages": [{"role": "system", "content": SO_SYSTEM}, {"role": "user", "content": q}],
            "reference_answer": label,
        }
        for i, (q, label) in enumerate(questions)
    ]


def numeric_rows() -> list[dict]:
    references: list[Any] = [
        "16",
        72,
        {"final_answer": "5"},
        "65.3%",
        0.653,
        {"answer": "-12.5"},
        "$1,234",
        "Natalia sold 48/2 = 24 clips.\n#### 72",
    ]
    return [
        {"id": f"num-{i}", "messages": [{"role": "user", "content": f"problem {i}"}], "reference_answer": ref}
        for i, ref in enumerate(references)
    ]


def legal_rows() -> list[dict]:
    references = [
        {
            "tool_calls": [
                {
                    "name": "search_case_law",
                    "arguments": {
                        "query": "Miranda warnings custodial interrogation",
                        "jurisdiction": "federal",
                        "limit": 5,
                    },
                }
            ]
        },
        {"tool_calls": [{"name": "get_statute", "arguments": {"code": "Penal Code", "section": "187"}}]},
        {
            "tool_calls": [
                {"name": "search_case_law", "arguments": {"query": "adverse possession", "jurisdiction": "CA"}},
                {"name": "get_statute", "arguments": {"code": "Civil Code", "section": "1007"}},
            ]
        },
        {"tool_calls": [{"name": "summarize_document", "arguments": {"document_id": "doc-42"}}]},
    ]
    return [
        {
            "id": f"legal-{i}",
            "messages": [
                {"role": "system", "content": "You are a legal research assistant."},
                {"role": "user", "content": f"request {i}"},
            ],
            "tools": LEGAL_TOOLS,
            "metadata": {"reference_answer": ref},
        }
        for i, ref in enumerate(references)
    ]


def legal_native_rows() -> list[dict]:
    """Rows in the legal query-analysis case study's own shape (written for the tests, not its data)."""

    def tool(name: str, parameters: dict, reasoning: str) -> dict:
        return {"Tool": name, "Parameters": parameters, "Reasoning": reasoning}

    references = [
        {
            "Type": "regulatory_compliance_analysis",
            "Information needed": "Exemption conditions and the offering's filing",
            "Tools": [
                tool("statute_retrieval", {"regulation": "Rule 147A"}, "Read the exemption's conditions first"),
                tool(
                    "compliance_checker",
                    {"query": "intrastate offering", "edgar_check": "Form D of the issuer", "regulation": "Rule 147A"},
                    "Check the filing against the retrieved conditions",
                ),
            ],
        },
        {
            "Type": "judicial_interpretation",
            "Information needed": "How courts read 'solicitation' for crowdfunding portals",
            "Tools": [tool("case_law_search", {"query": "crowdfunding portal solicitation rulings"}, "Precedent")],
        },
        {
            "Type": "citation_verification",
            "Information needed": "Whether the cited section exists and says what is claimed",
            "Tools": [tool("citation_validator", {"query": "17 CFR 227.100"}, "Check the citation format and text")],
        },
        {
            "Type": ["cross_document_analysis", "judicial_interpretation"],
            "Information needed": "Statute, precedent and the filing together",
            "Tools": [
                tool("statute_retrieval", {"regulation": "Securities Act Section 4(a)(2)"}, "The statute"),
                tool("case_law_search", {"query": "Section 4(a)(2) offeree sophistication"}, "How courts apply it"),
                tool(
                    "compliance_checker",
                    {"query": "private offering", "edgar_check": "subscription agreement", "regulation": "4(a)(2)"},
                    "Validate the documents",
                ),
            ],
        },
    ]
    return [
        {"id": f"qa-{i}", "messages": [{"role": "user", "content": f"legal question {i}"}], "reference_answer": ref}
        for i, ref in enumerate(references)
    ]


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)
