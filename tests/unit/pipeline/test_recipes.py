"""Base recipes: every shipped recipe loads; overrides map into the right field and are checked."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import yaml

from lambdas.pipeline import recipes
from lambdas.pipeline.catalog import MODELS

NOVA_2 = MODELS["nova-2-lite"]
SHIPPED = [(m, method) for m in MODELS for method in ("sft", "rft", "eval") if recipes.available(m, method)]


def _render(model: str, method: str, **kwargs: Any) -> dict[str, Any]:
    template = recipes.load_template(model, method)
    defaults: dict[str, Any] = {
        "job_name": "nova-run-1-0b9d6cbe-x-a1",
        "model": MODELS[model],
        "model_location": MODELS[model].model_name_or_path,
        "instance_count": template.instance_count,
        "overrides": {},
    }
    defaults.update(kwargs)
    return recipes.render(template, **defaults)


def test_every_model_has_sft_and_eval_and_rft_exactly_where_the_catalog_has_an_image() -> None:
    for key, model in MODELS.items():
        assert recipes.available(key, "sft") and recipes.available(key, "eval"), key
        assert recipes.available(key, "rft") == (model.rft_tag is not None), key


@pytest.mark.parametrize(("model", "method"), SHIPPED)
def test_every_shipped_recipe_loads_and_renders_with_its_defaults(model: str, method: str) -> None:
    template = recipes.load_template(model, method)
    extra = {}
    if method == "rft":
        extra = {
            "reward_lambda_arn": "arn:aws:lambda:us-east-1:1:function:grader",
            "data_uri": "s3://d/datasets/r.jsonl",
        }
    if method == "eval":
        extra = {"task": "gen_qa"}
    recipe = _render(model, method, **extra)
    assert recipe["run"]["model_type"] == MODELS[model].model_type
    assert recipe["run"]["replicas"] == template.instance_count
    text = recipes.to_yaml(recipe)
    assert "null" not in text.replace("reasoning_effort: null", "")  # every derived field was filled
    assert "${" not in text  # no OmegaConf interpolation left for the container
    assert yaml.safe_load(text) == recipe


def test_lr_maps_to_the_optimizer_of_each_recipe_layout() -> None:
    assert _render("nova-2-lite", "sft", overrides={"lr": 5e-6})["training_config"]["optim_config"]["lr"] == 5e-6
    rft = _render("nova-2-lite", "rft", overrides={"lr": 2e-5}, reward_lambda_arn="arn:x", data_uri="s3://d/k")
    assert rft["training_config"]["trainer"]["optim_config"]["lr"] == 2e-5
    assert _render("nova-pro", "sft", overrides={"lr": 3e-6})["training_config"]["model"]["optim"]["lr"] == 3e-6


def test_nova_2_has_no_epochs_and_says_to_use_max_steps() -> None:
    problems = dict(recipes.override_problems(recipes.load_template("nova-2-lite", "sft"), {"epochs": 3}))
    assert "use max_steps" in problems["epochs"]
    assert "allowed: " in problems["epochs"] and "max_steps" in problems["epochs"]
    nova_1 = dict(recipes.override_problems(recipes.load_template("nova-lite", "sft"), {"epochs": 3}))
    assert "use max_epochs" in nova_1["epochs"]


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"max_steps": 3}, "max_steps", "below the minimum 4"),
        ({"max_steps": 10.5}, "max_steps", "expected an integer"),
        ({"max_steps": True}, "max_steps", "expected an integer"),
        ({"global_batch_size": 48}, "global_batch_size", "one of 32, 64, 128"),
        ({"lr": 0}, "lr", "greater than 0"),
        ({"lr": "fast"}, "lr", "expected a number"),
        ({"save_steps": 500}, "save_steps", "at most max_steps (100)"),
        ({"max_steps": 20, "warmup_steps": 20}, "warmup_steps", "less than max_steps (20)"),
        ({"reasoning_enabled": "yes"}, "reasoning_enabled", "true or false"),
    ],
)
def test_bad_sft_overrides_are_reported_with_what_is_allowed(overrides: dict, key: str, fragment: str) -> None:
    problems = dict(recipes.override_problems(recipes.load_template("nova-2-lite", "sft"), overrides))
    assert fragment in problems[key], problems


def test_rft_knobs_land_in_the_rollout_and_trainer_sections() -> None:
    recipe = _render(
        "nova-2-lite",
        "rft",
        reward_lambda_arn="arn:grader",
        data_uri="s3://d/datasets/rft.jsonl",
        overrides={"number_generation": 4, "max_steps": 40, "reasoning_effort": None, "temperature": 0.7},
    )
    config = recipe["training_config"]
    assert config["rollout"]["advantage_strategy"]["number_generation"] == 4
    assert config["rollout"]["generator"]["temperature"] == 0.7
    assert config["trainer"]["max_steps"] == 40 and config["trainer"]["save_steps"] == 40
    assert config["reasoning_effort"] is None
    # the grader goes in both places the RFT container reads
    assert recipe["run"]["reward_lambda_arn"] == "arn:grader"
    assert config["rollout"]["rewards"]["api_endpoint"]["lambda_arn"] == "arn:grader"
    assert recipe["run"]["data_s3_path"] == "s3://d/datasets/rft.jsonl"


def test_rft_accepts_the_published_instance_counts_only() -> None:
    template = recipes.load_template("nova-2-lite", "rft")
    assert template.instance_counts == (2, 4, 8)
    with pytest.raises(ValueError, match="accepts"):
        _render("nova-2-lite", "rft", instance_count=3, reward_lambda_arn="arn:x", data_uri="s3://d/k")
    with pytest.raises(ValueError, match="accepts"):
        _render("nova-2-lite", "rft", instance_count=1, reward_lambda_arn="arn:x", data_uri="s3://d/k")


def test_replicas_is_the_instance_count_and_the_name_is_the_job_name() -> None:
    recipe = _render("nova-2-lite", "sft", instance_count=8, job_name="nova-r-sft-a2")
    assert recipe["run"]["replicas"] == 8 and recipe["run"]["name"] == "nova-r-sft-a2"


def test_derived_fields_follow_max_steps_unless_overridden() -> None:
    derived = _render("nova-2-lite", "sft", overrides={"max_steps": 40})["training_config"]
    assert derived["save_steps"] == 40 and derived["lr_scheduler"]["warmup_steps"] == 6
    explicit = _render("nova-2-lite", "sft", overrides={"max_steps": 40, "save_steps": 10})["training_config"]
    assert explicit["save_steps"] == 10


def test_a_checkpoint_becomes_the_model_name_or_path() -> None:
    recipe = _render("nova-2-lite", "sft", model_location="s3://customer-escrow-1-smtj-x/ckpt/")
    assert recipe["run"]["model_name_or_path"] == "s3://customer-escrow-1-smtj-x/ckpt/"


def test_evaluation_tasks_add_their_sections() -> None:
    gen_qa = _render("nova-2-lite", "eval", task="gen_qa")
    assert gen_qa["evaluation"] == {"task": "gen_qa", "strategy": "gen_qa", "metric": "all"}
    assert "rl_env" not in gen_qa
    rft_eval = _render("nova-2-lite", "eval", task="rft_eval", reward_lambda_arn="arn:grader")
    assert rft_eval["evaluation"]["task"] == "rft_eval"
    assert rft_eval["rl_env"]["reward_lambda_arn"] == "arn:grader"
    with pytest.raises(ValueError, match="grader"):
        _render("nova-2-lite", "eval", task="rft_eval")


CONTAINER_RECIPE = {"sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml"}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_rft_eval_recipes_carry_the_grader_in_rl_env_only(model: str) -> None:
    recipe = _render(model, "eval", task="rft_eval", reward_lambda_arn="arn:grader")
    assert recipe["rl_env"] == {"reward_lambda_arn": "arn:grader"}
    assert "reward_lambda_arn" not in recipe["run"] and "processor" not in recipe
    assert recipes.hyperparameters(recipe) == {**CONTAINER_RECIPE, "base_model": MODELS[model].model_name_or_path}


def test_hyperparameters_follow_the_sdk_for_training_recipes() -> None:
    sft = _render("nova-2-lite", "sft")
    assert recipes.hyperparameters(sft) == {**CONTAINER_RECIPE, "base_model": "nova-lite-2/prod"}
    checkpoint = "s3://customer-escrow-1-smtj-x/ckpt/"
    rft = _render("nova-2-lite", "rft", model_location=checkpoint, reward_lambda_arn="arn:grader", data_uri="s3://d/k")
    assert recipes.hyperparameters(rft) == {
        **CONTAINER_RECIPE,
        "base_model_location": checkpoint,
        "reward_lambda_arn": "arn:grader",
    }


def test_eval_lambda_arn_only_for_an_evaluation_with_a_processor_lambda() -> None:
    gen_qa = _render("nova-2-lite", "eval", task="gen_qa")
    assert "eval_lambda_arn" not in recipes.hyperparameters(gen_qa)
    custom = {**gen_qa, "processor": {"lambda_arn": "arn:metrics"}}
    assert recipes.hyperparameters(custom)["eval_lambda_arn"] == "arn:metrics"
    # an unfilled template placeholder or an empty value is not sent, and nor is a processor outside an evaluation
    assert "eval_lambda_arn" not in recipes.hyperparameters({**gen_qa, "processor": {"lambda_arn": "{{arn}}"}})
    assert "eval_lambda_arn" not in recipes.hyperparameters({**gen_qa, "processor": {"lambda_arn": ""}})
    sft = {**_render("nova-2-lite", "sft"), "processor": {"lambda_arn": "arn:metrics"}}
    assert "eval_lambda_arn" not in recipes.hyperparameters(sft)


def test_every_override_spec_points_at_an_existing_field() -> None:
    for model, method in SHIPPED:
        template = recipes.load_template(model, method)
        for spec in template.overrides.values():
            tree = template.recipe
            for part in spec.path[:-1]:
                tree = tree[part]
            assert spec.path[-1] in tree, (model, method, spec.key)


def test_every_default_and_priced_instance_type_is_a_sagemaker_training_instance_type() -> None:
    import botocore.session

    from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR

    enum = set(botocore.session.get_session().get_service_model("sagemaker").shape_for("TrainingInstanceType").enum)
    assert set(INSTANCE_PRICE_USD_PER_HOUR) <= enum
    for model, method in SHIPPED:
        assert recipes.load_template(model, method).instance_type in INSTANCE_PRICE_USD_PER_HOUR


# Published ranges (aws/sagemaker-hyperpod-recipes,
# launcher/recipe_templatization/nova/nova_recipe_template_parameters.json), intersected with the official
# recipes' comments: (model, method, key, lowest accepted, highest accepted).
PUBLISHED_BOUNDS = [
    ("nova-2-lite", "rft", "lr", 1e-7, 1e-3),
    ("nova-2-lite", "rft", "max_steps", 5, 100000),
    ("nova-2-lite", "rft", "max_length", 4096, 32768),
    ("nova-2-lite", "rft", "number_generation", 2, 16),
    ("nova-2-lite", "rft", "lora_plus_lr_ratio", 0.0, 100.0),
    ("nova-2-lite", "rft", "kl_loss_coef", 0.0, 1.0),
    ("nova-2-lite", "rft", "ent_coeff", 0.0, 1.0),
    ("nova-2-lite", "rft", "max_new_tokens", 1, 32768),
    ("nova-2-lite", "rft", "top_k", -1, 1000),
    ("nova-2-lite", "sft", "max_steps", 4, 100000),
    ("nova-2-lite", "sft", "min_lr", 1e-7, 1.0),
    ("nova-2-lite", "sft", "lora_plus_lr_ratio", 1.0, 70.0),
    ("nova-2-lite", "eval", "max_new_tokens", 1, 32768),
    ("nova-2-lite", "eval", "top_k", -1, 1000),
    ("nova-lite", "sft", "warmup_steps", 0, 100),
    ("nova-lite", "sft", "min_lr", 1e-7, 1.0),
    ("nova-micro", "sft", "lora_plus_lr_ratio", 1.0, 70.0),
    ("nova-pro", "sft", "warmup_steps", 0, 100),
    ("nova-lite", "eval", "max_new_tokens", 1, 100000),
    ("nova-micro", "eval", "max_new_tokens", 1, 100000),
    ("nova-pro", "eval", "top_k", -1, 1000),
]
# warmup_steps and save_steps are also bounded by max_steps: lift it so only the key's own range counts.
_CONTEXT = {("nova-2-lite", "sft"): {"max_steps": 100000}, ("nova-2-lite", "rft"): {"max_steps": 100000}}


def _problems(model: str, method: str, overrides: dict[str, Any]) -> dict[str, str]:
    return dict(recipes.override_problems(recipes.load_template(model, method), overrides))


@pytest.mark.parametrize(("model", "method", "key", "low", "high"), PUBLISHED_BOUNDS)
def test_published_boundaries_are_accepted_and_the_next_values_out_are_not(
    model: str, method: str, key: str, low: float, high: float
) -> None:
    context = {k: v for k, v in _CONTEXT.get((model, method), {}).items() if k != key}
    assert _problems(model, method, {**context, key: low}) == {}
    assert _problems(model, method, {**context, key: high}) == {}
    step = 1 if isinstance(high, int) else high / 10
    below = low - 1 if isinstance(low, int) else (low / 2 if low > 0 else -0.1)
    assert "below the minimum" in _problems(model, method, {**context, key: below})[key]
    assert "above the maximum" in _problems(model, method, {**context, key: high + step})[key]


@pytest.mark.parametrize(
    ("model", "method", "overrides", "key", "fragment"),
    [
        ("nova-2-lite", "rft", {"lr": 1.0}, "lr", "above the maximum 0.001"),
        ("nova-2-lite", "rft", {"max_steps": 1}, "max_steps", "below the minimum 5"),
        ("nova-2-lite", "rft", {"max_steps": 10**30}, "max_steps", "above the maximum 100000"),
        ("nova-2-lite", "rft", {"max_length": 65536}, "max_length", "above the maximum 32768"),
        ("nova-2-lite", "rft", {"kl_loss_coef": 1e308}, "kl_loss_coef", "above the maximum 1"),
        ("nova-2-lite", "rft", {"ent_coeff": 5.0}, "ent_coeff", "above the maximum 1"),
        ("nova-2-lite", "rft", {"max_new_tokens": 10**9}, "max_new_tokens", "above the maximum 32768"),
        ("nova-2-lite", "rft", {"top_k": 10**9}, "top_k", "above the maximum 1000"),
        ("nova-2-lite", "rft", {"global_batch_size": 256}, "global_batch_size", "one of 16, 32, 64, 128"),
        ("nova-2-lite", "rft", {"lora_alpha": 128}, "lora_alpha", "one of 16, 32, 64"),
        ("nova-2-lite", "sft", {"max_steps": 1000, "warmup_steps": 500}, "warmup_steps", "above the maximum 100"),
        ("nova-2-lite", "sft", {"max_steps": 10**30}, "max_steps", "above the maximum 100000"),
        ("nova-2-lite", "sft", {"min_lr": 0.0}, "min_lr", "below the minimum 1e-07"),
        ("nova-2-lite", "eval", {"max_new_tokens": 10**9}, "max_new_tokens", "above the maximum 32768"),
        ("nova-lite", "sft", {"global_batch_size": 128}, "global_batch_size", "one of 16, 32, 64"),
        ("nova-micro", "sft", {"global_batch_size": 256}, "global_batch_size", "one of 16, 32, 64"),
        ("nova-pro", "sft", {"warmup_steps": 10**6}, "warmup_steps", "above the maximum 100"),
        ("nova-lite", "sft", {"lora_plus_lr_ratio": 100.0}, "lora_plus_lr_ratio", "above the maximum 70"),
        ("nova-lite", "eval", {"max_new_tokens": 10**9}, "max_new_tokens", "above the maximum 100000"),
        ("nova-pro", "eval", {"top_k": 10**9}, "top_k", "above the maximum 1000"),
    ],
)
def test_values_outside_the_published_ranges_are_rejected_with_the_range(
    model: str, method: str, overrides: dict, key: str, fragment: str
) -> None:
    message = _problems(model, method, overrides)[key]
    # a range names its bounds after the offending value; an enum ends with the complete list of choices
    assert fragment in message and ("(allowed: " in message or message.endswith(fragment)), message


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("model", "method", "key"),
    [
        ("nova-2-lite", "rft", "lr"),
        ("nova-2-lite", "rft", "kl_loss_coef"),
        ("nova-2-lite", "rft", "max_steps"),
        ("nova-lite", "eval", "temperature"),
    ],
)
def test_non_finite_numbers_are_rejected(model: str, method: str, key: str, value: float) -> None:
    assert "is not valid: expected" in _problems(model, method, {key: value})[key]


@pytest.mark.parametrize(
    ("model", "counts"),
    [("nova-2-lite", (4, 8, 16, 32)), ("nova-lite", (4, 8, 16)), ("nova-micro", (2, 4, 8)), ("nova-pro", (6, 12, 24))],
)
def test_sft_instance_counts_are_the_published_ones(model: str, counts: tuple[int, ...]) -> None:
    assert recipes.load_template(model, "sft").instance_counts == counts


def test_every_numeric_override_has_both_bounds_and_names_its_source() -> None:
    for model, method in SHIPPED:
        for spec in recipes.load_template(model, method).overrides.values():
            assert spec.source, (model, method, spec.key)
            if spec.type in ("int", "float") and spec.choices is None:
                assert spec.maximum is not None and (spec.minimum is not None or spec.above is not None), spec


def test_a_base_recipe_without_an_upper_bound_does_not_load(tmp_path: Any) -> None:
    text = (recipes.RECIPES_DIR / "nova-2-lite" / "eval.yaml").read_text(encoding="utf-8")
    bounded = "max_new_tokens: {path: inference.max_new_tokens, type: int, min: 1, max: 32768,"
    assert bounded in text
    (tmp_path / "nova-2-lite").mkdir()
    (tmp_path / "nova-2-lite" / "eval.yaml").write_text(
        text.replace(bounded, "max_new_tokens: {path: inference.max_new_tokens, type: int, min: 1,"), encoding="utf-8"
    )
    with pytest.raises(recipes.RecipeError, match="max_new_tokens needs finite lower and upper bounds"):
        recipes.load_template("nova-2-lite", "eval", tmp_path)


def _keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= _keys(value, f"{prefix}{key}.")
    return paths


OFFERED = [(m, "eval", task) for m in MODELS for task in recipes.EVAL_TASKS] + [
    (m, method, None) for m, method in SHIPPED if method != "eval"
]


@pytest.mark.parametrize(("model", "method", "task"), OFFERED)
def test_every_offered_recipe_keeps_every_key_of_the_official_recipe_it_follows(
    model: str, method: str, task: str | None
) -> None:
    template = recipes.load_template(model, method)
    base = template.bases[task or method]
    assert base.path.startswith("recipes_collection/recipes/") and base.repository == "aws/sagemaker-hyperpod-recipes"
    assert len(base.commit) == 40 and base.version
    extra = {"reward_lambda_arn": "arn:aws:lambda:us-east-1:111122223333:function:grader"}
    if method == "rft":
        extra["data_uri"] = "s3://d/datasets/r.jsonl"
    # every override at a non-default value: rendering with overrides drops nothing either
    overrides = {
        key: spec.choices[-1] if spec.choices else (spec.maximum if spec.type == "float" else int(spec.maximum or 1))
        for key, spec in template.overrides.items()
        if spec.type in ("int", "float") and not spec.below and not spec.at_most
    }
    for kwargs in ({}, {"overrides": overrides}):
        recipe = _render(model, method, task=task, **extra, **kwargs)
        assert _keys(base.tree) == _keys(recipe), (model, method, task)
        text = recipes.to_yaml(recipe)
        for placeholder in ("${", "<region>", "my-bucket-name", "<bucket>", "escrow_bucket"):
            assert placeholder not in text, (model, method, task, placeholder)


def test_official_numbers_are_read_as_omegaconf_reads_them() -> None:
    assert recipes.load_yaml("lr: 1e-5\nn: 1e3\nt: 1\nu: 1.0\ns: '1e-5'\n") == {
        "lr": 1e-5,
        "n": 1000.0,
        "t": 1,
        "u": 1.0,
        "s": "1e-5",
    }
    assert recipes.load_template("nova-2-lite", "sft").recipe["training_config"]["optim_config"]["lr"] == 1e-5


def test_interpolations_resolve_after_the_overrides_as_the_sdk_resolves_them() -> None:
    template = recipes.load_template("nova-2-lite", "rft")
    assert (
        template.recipe["training_config"]["trainer"]["save_steps"] == "${oc.select:training_config.trainer.max_steps}"
    )
    rft = _render("nova-2-lite", "rft", overrides={"max_steps": 12}, reward_lambda_arn="arn:g", data_uri="s3://d/k")
    assert rft["training_config"]["trainer"]["save_steps"] == 12
    tree = {
        "a": {"n": 3, "m": "${a.n}"},
        "b": "${oc.select:a.missing,7}",
        "c": "${oc.select:a.missing}",
        "d": "${multiply:${a.n},4}",
        "e": "${divide_ceil:7,2}",
        "f": "${divide_floor:7,2}",
        "g": "${add:1,2,${a.m}}",
        "h": "step ${a.n} of ${oc.select:a.n}",
    }
    assert recipes.resolve(tree) == {
        "a": {"n": 3, "m": 3},
        "b": 7,
        "c": None,
        "d": 12,
        "e": 4,
        "f": 3,
        "g": 6,
        "h": "step 3 of 3",
    }
    with pytest.raises(recipes.RecipeError, match="x.y: interpolation refers to missing key a.nope"):
        recipes.resolve({"a": {}, "x": {"y": "${a.nope}"}})
    with pytest.raises(recipes.RecipeError, match="loop"):
        recipes.resolve({"p": "${q}", "q": "${p}"})
    with pytest.raises(recipes.RecipeError, match="unknown resolver 'oc.env'"):
        recipes.resolve({"p": "${oc.env:HOME}"})


_OFFICIAL_PATH = "recipes_collection/recipes/fine-tuning/nova/x/sft.yaml"
_OFFICIAL = """run:
  name: my-run
  replicas: 1
training_config:
  max_steps: 100
  save_steps: ${oc.select:training_config.max_steps}
  lr: 1e-5
  temperature: 1
"""


def _project_recipe(root: Any, tree: dict[str, Any]) -> Any:
    """A one-model project recipes directory whose SFT base recipe follows _OFFICIAL_PATH with ``tree``."""
    doc = {
        "method": "sft",
        "instance": {"type": "ml.p5.48xlarge", "types": ["ml.p5.48xlarge"], "count": 1, "counts": [1]},
        "max_runtime_hours": 1,
        "overrides": {
            "max_steps": {
                "path": "training_config.max_steps",
                "type": "int",
                "min": 4,
                "max": 1000,
                "source": "nova_t.max_steps",
            },
            "lr": {
                "path": "training_config.lr",
                "type": "float",
                "above": 0,
                "max": 1,
                "source": "recipe comment (lr)",
            },
        },
        "follows": {"repository": "r", "version": "v1", "commit": "c" * 40, "recipe": _OFFICIAL_PATH},
        "recipe": tree,
    }
    (root / "project" / "m").mkdir(parents=True)
    (root / "project" / "m" / "sft.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    official = root / "checkout" / _OFFICIAL_PATH
    official.parent.mkdir(parents=True)
    official.write_text(_OFFICIAL, encoding="utf-8")
    templates = root / "checkout" / recipes.TEMPLATES_PATH
    templates.parent.mkdir(parents=True)
    parameters = {"max_steps": {"type": "integer", "min": 4, "max": 1000}}
    templates.write_text(json.dumps({"templates": {"nova_t": {"recipe_override_parameters": parameters}}}))
    return root / "project"


def test_the_comparison_is_empty_for_a_copy_of_the_official_recipe(tmp_path: Any, capsys: Any) -> None:
    project = _project_recipe(tmp_path, recipes.load_yaml(_OFFICIAL))
    assert recipes.compare(tmp_path / "checkout", project) == []
    assert recipes.main(["compare", str(tmp_path / "checkout"), "--recipes-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "base recipes follow r v1 (commit cccc" in out
    assert "1 official recipes and the override ranges compared, 0 difference(s)" in out


def test_the_comparison_lists_missing_and_extra_keys_and_different_defaults(tmp_path: Any, capsys: Any) -> None:
    tree = recipes.load_yaml(_OFFICIAL)
    del tree["run"]["replicas"]
    tree["run"]["model_type"] = "extra"
    tree["training_config"]["lr"] = 1e-4
    tree["training_config"]["temperature"] = 1.0  # same number, another YAML type
    tree["training_config"]["save_steps"] = 100  # the interpolation resolved: not what the official file says
    project = _project_recipe(tmp_path, tree)
    where = f"m/sft.yaml [sft] follows {_OFFICIAL_PATH}: "
    assert recipes.compare(tmp_path / "checkout", project) == [
        where + "missing key run.replicas (official default 1)",
        where + "extra key run.model_type (project value 'extra'; not in the official recipe)",
        where + "different default training_config.save_steps: project 100, "
        "official '${oc.select:training_config.max_steps}'",
        where + "different default training_config.lr: project 0.0001, official 1e-05",
        where + "different default training_config.temperature: project 1.0, official 1",
    ]
    assert recipes.main(["compare", str(tmp_path / "checkout"), "--recipes-dir", str(project)]) == 1
    assert "5 difference(s)" in capsys.readouterr().out


def test_the_comparison_reports_an_official_recipe_missing_from_the_checkout(tmp_path: Any, capsys: Any) -> None:
    project = _project_recipe(tmp_path, recipes.load_yaml(_OFFICIAL))
    (tmp_path / "checkout" / _OFFICIAL_PATH).unlink()
    (line,) = recipes.compare(tmp_path / "checkout", project)
    assert line.endswith("the checkout has no such file")
    assert recipes.main(["compare", str(tmp_path / "project")]) == 2
    assert "not a checkout of the official recipes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("published", "message"),
    [
        ({"min": 5, "max": 1000}, "lower bound 4 is below the published minimum 5"),
        ({"min": 4, "max": 999}, "upper bound 1000 is above the published maximum 999"),
        ({"enum": [4, 8]}, "accepts a range (an integer >= 4 and <= 1000) where only [4, 8] are published"),
        (None, "the parameter templates have no such entry"),
    ],
)
def test_the_comparison_lists_override_ranges_wider_than_the_published_templates(
    tmp_path: Any, published: dict[str, Any] | None, message: str
) -> None:
    project = _project_recipe(tmp_path, recipes.load_yaml(_OFFICIAL))
    assert recipes.range_differences(tmp_path / "checkout", project) == []
    parameters = {"max_steps": {"type": "integer", **published}} if published else {}
    (tmp_path / "checkout" / recipes.TEMPLATES_PATH).write_text(
        json.dumps({"templates": {"nova_t": {"recipe_override_parameters": parameters}}})
    )
    assert recipes.range_differences(tmp_path / "checkout", project) == [
        f"m/sft.yaml override max_steps (source nova_t.max_steps): {message}"
    ]
    assert recipes.main(["compare", str(tmp_path / "checkout"), "--recipes-dir", str(project)]) == 1


def test_choices_outside_the_published_values_are_listed() -> None:
    spec = recipes.OverrideSpec(key="k", path=("k",), type="int", choices=(16, 32, 256), source="nova_t.k")
    assert recipes._wider(spec, {"enum": [16, 32]}) == "accepts [256]"
    assert recipes._wider(spec, {"min": 16, "max": 128}) == "accepts [256]"
    assert recipes._wider(spec, {"min": 1, "max": 256}) is None


def test_defaults_are_the_project_settings_over_the_official_values() -> None:
    rft = recipes.load_template("nova-2-lite", "rft")
    assert rft.recipe["training_config"]["trainer"]["max_steps"] == 5  # the official recipe's value
    assert rft.default("max_steps") == 40  # the project's setting, what a job runs with
    assert recipes.override_problems(rft, {"save_steps": 30}) == []
    assert recipes.override_problems(rft, {"save_steps": 41}) == [("save_steps", "41 must be at most max_steps (40)")]
    recipe = _render("nova-2-lite", "rft", reward_lambda_arn="arn:g", data_uri="s3://d/k")
    assert recipe["training_config"]["trainer"]["max_steps"] == recipe["training_config"]["trainer"]["save_steps"] == 40
