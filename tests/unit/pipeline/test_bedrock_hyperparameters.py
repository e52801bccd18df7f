"""The Bedrock road's hyperparameters: short keys -> Bedrock's names, ranges at, inside and outside each bound,
RFT ranges read from botocore's model, documented defaults, unknown keys listed with the allowed ones."""

from __future__ import annotations

import botocore.session
import pytest

from lambdas.pipeline import bedrock_hyperparameters as hp

BOUNDED = [
    (method, parameter)
    for method in ("sft", "rft", "eval")
    for parameter in hp.table(method).values()
    if parameter.minimum is not None or parameter.maximum is not None
]


def _model(method: str) -> str:
    return "nova-2-lite" if method == "rft" else "nova-lite"


def _value(parameter: hp.Parameter, number: float) -> float:
    return int(number) if parameter.kind == "int" else number


def _step(parameter: hp.Parameter, bound: float) -> float:
    return 1 if parameter.kind == "int" else abs(bound) * 0.01 or 0.01


@pytest.mark.parametrize(("method", "parameter"), BOUNDED, ids=lambda v: getattr(v, "key", v))
def test_values_at_and_inside_each_bound_pass_and_outside_fail(method: str, parameter: hp.Parameter) -> None:
    model = _model(method)
    for bound, outside in ((parameter.minimum, -1), (parameter.maximum, 1)):
        if bound is None:
            continue
        step = _step(parameter, bound)
        assert hp.problems(method, model, {parameter.key: _value(parameter, bound)}) == []
        assert hp.problems(method, model, {parameter.key: _value(parameter, bound - outside * step)}) == []
        ((key, message),) = hp.problems(method, model, {parameter.key: _value(parameter, bound + outside * step)})
        assert key == parameter.key
        assert ("below the minimum" if outside < 0 else "above the maximum") in message
        assert parameter.name in message and parameter.source in message


def test_rft_ranges_are_botocores() -> None:
    shape = botocore.session.get_session().get_service_model("bedrock").shape_for("RFTHyperParameters")
    table = {p.name: p for p in hp.table("rft").values()}
    assert set(table) == set(shape.members)
    for name, member in shape.members.items():
        assert table[name].minimum == member.metadata.get("min", table[name].minimum), name
        assert table[name].maximum == member.metadata.get("max", table[name].maximum), name
    assert table["batchSize"].minimum == 16 and table["batchSize"].maximum == 512
    assert table["trainingSamplePerPrompt"].minimum == 2 and table["trainingSamplePerPrompt"].maximum == 16
    assert table["learningRate"].minimum == 1e-7 and table["learningRate"].maximum == 1e-3
    assert table["reasoningEffort"].choices == ("low", "medium", "high")


def test_every_numeric_parameter_has_both_bounds_and_a_source() -> None:
    for method in ("sft", "rft"):
        for parameter in hp.table(method).values():
            assert parameter.source
            if parameter.kind != "str":
                assert parameter.minimum is not None and parameter.maximum is not None, parameter.key


def test_the_documented_defaults_are_resolved_and_overrides_replace_them() -> None:
    assert hp.resolve("sft", "nova-micro", {}) == {"epochCount": 2, "learningRate": 1e-5, "learningRateWarmupSteps": 10}
    rft = hp.resolve("rft", "nova-2-lite", {"lr": 1e-6, "number_generation": 4, "reasoning_effort": "high"})
    assert rft == {
        "epochCount": 1,
        "batchSize": 128,
        "learningRate": 1e-6,
        "maxPromptLength": 8192,
        "trainingSamplePerPrompt": 4,
        "inferenceMaxTokens": 2048,
        "reasoningEffort": "high",
        "evalInterval": 10,
    }
    # evaluation sends nothing the run does not set
    assert hp.resolve("finalEval", "nova-2-lite", {}) == {}
    assert hp.resolve("baselineEval", "nova-2-lite", {"max_new_tokens": 512}) == {"maxTokens": 512}


def test_sft_hyperparameters_are_bedrocks_map_of_strings() -> None:
    strings = hp.as_strings(hp.resolve("sft", "nova-2-lite", {"lr": 5e-5, "max_epochs": 3}))
    assert strings == {"epochCount": "3", "learningRate": "5e-05", "learningRateWarmupSteps": "10"}


def test_unknown_keys_list_the_allowed_ones_and_wrong_types_are_refused() -> None:
    ((key, message),) = hp.problems("sft", "nova-2-lite", {"max_steps": 100})
    assert key == "max_steps"
    assert "allowed: lr, max_epochs, warmup_steps" in message
    assert hp.problems("rft", "nova-2-lite", {"reasoning_effort": "extreme"})[0][0] == "reasoning_effort"
    assert hp.problems("rft", "nova-2-lite", {"global_batch_size": 32.5})[0][0] == "global_batch_size"
    assert hp.problems("rft", "nova-2-lite", {"global_batch_size": True})[0][0] == "global_batch_size"
    assert hp.problems("sft", "nova-2-lite", {"lr": float("nan")})[0][0] == "lr"
    with pytest.raises(ValueError, match="max_steps"):
        hp.resolve("sft", "nova-2-lite", {"max_steps": 100})


def test_rft_is_offered_for_nova_2_lite_only() -> None:
    assert hp.available("nova-2-lite", "rft")
    assert not hp.available("nova-pro", "rft")
    assert all(hp.available(model, "sft") for model in ("nova-2-lite", "nova-lite", "nova-micro", "nova-pro"))
    ((key, message),) = hp.problems("rft", "nova-lite", {})
    assert key == "(method)" and "nova-2-lite" in message
