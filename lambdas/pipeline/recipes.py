"""Nova recipes: the project's base recipes, override checking and rendering.

Base recipes live beside this module (``recipes/<model>/<method>.yaml``, see the
README there). A run's overrides use short, documented keys (``lr``,
``max_steps``, ``number_generation``...) that map into the recipe tree: for
example ``lr`` is ``training_config.optim_config.lr`` for Nova 2 SFT but
``training_config.trainer.optim_config.lr`` for Nova 2 RFT. Every override is
type- and range-checked when the run is validated, long before a GPU starts.

The ranges are AWS's published ones: the parameter templates in
``launcher/recipe_templatization/nova/nova_recipe_template_parameters.json`` of the
public repository ``aws/sagemaker-hyperpod-recipes`` (``templates.<template>.
recipe_override_parameters.<parameter>``), narrowed where the comments of the
official recipe (``recipes_collection/recipes/...``) are stricter. Every override
in a base recipe names its entry in ``source`` (``<template>.<parameter>``, a
recipe comment, or a project limit where AWS publishes no range), and every
numeric override has a lower and an upper bound.

Pure module: no AWS calls; PyYAML only.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lambdas.pipeline.catalog import NovaModel

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
EVAL_TASKS = ("gen_qa", "rft_eval")
PUBLISHED_TEMPLATES = (
    "aws/sagemaker-hyperpod-recipes: launcher/recipe_templatization/nova/nova_recipe_template_parameters.json"
)

# Keys people reach for that the recipes spell differently: key -> [(recipe key, advice)].
_STEP_BASED = "Nova 2 training is step-based: there is no epochs key, use max_steps"
_HINTS: dict[str, list[tuple[str, str]]] = {
    "epochs": [("max_steps", _STEP_BASED), ("max_epochs", "use max_epochs")],
    "num_epochs": [("max_steps", _STEP_BASED), ("max_epochs", "use max_epochs")],
    "max_epochs": [("max_steps", _STEP_BASED)],
    "max_steps": [("max_epochs", "Nova 1 recipes count epochs: use max_epochs")],
    "learning_rate": [("lr", "use lr")],
    "batch_size": [("global_batch_size", "use global_batch_size")],
    "steps": [("max_steps", "use max_steps")],
    "num_generations": [("number_generation", "use number_generation (rollouts per prompt)")],
    "rollouts_per_prompt": [("number_generation", "use number_generation (rollouts per prompt)")],
}


class RecipeError(ValueError):
    """A base recipe file is missing or malformed (a project bug, not a user error)."""


@dataclass(frozen=True)
class OverrideSpec:
    """One overridable key: where it goes in the recipe and which values it accepts."""

    key: str
    path: tuple[str, ...]
    type: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: str | None = None
    at_most: str | None = None
    source: str = ""

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join("null" if c is None else str(c) for c in self.choices)
        bounds = []
        if self.above is not None:
            bounds.append(f"> {self.above:g}")
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        if self.below is not None:
            bounds.append(f"< {self.below}")
        if self.at_most is not None:
            bounds.append(f"<= {self.at_most}")
        kind = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}[self.type]
        return f"{kind} {' and '.join(bounds)}".strip()


@dataclass(frozen=True)
class RecipeTemplate:
    """A base recipe with its defaults and the overrides it accepts."""

    model: str
    method: str
    instance_type: str
    instance_count: int
    instance_counts: tuple[int, ...]
    instance_types: tuple[str, ...]
    max_runtime_hours: float
    overrides: dict[str, OverrideSpec]
    derived: dict[tuple[str, ...], tuple[tuple[str, ...], float]]
    recipe: dict[str, Any]
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def default(self, key: str) -> Any:
        """The base recipe's value of override ``key`` (before derivations)."""
        return _get(self.recipe, self.overrides[key].path)


def _path(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split("."))


def _get(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = tree
    for part in path:
        if not isinstance(node, dict) or part not in node:
            raise KeyError(".".join(path))
        node = node[part]
    return node


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node[part]
    if path[-1] not in node:
        raise KeyError(".".join(path))
    node[path[-1]] = value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def available(model: str, method: str, recipes_dir: Path = RECIPES_DIR) -> bool:
    return (recipes_dir / model / f"{method}.yaml").is_file()


@cache
def load_template(model: str, method: str, recipes_dir: Path = RECIPES_DIR) -> RecipeTemplate:
    """The base recipe of ``model`` for ``method`` (``sft``, ``rft`` or ``eval``)."""
    path = recipes_dir / model / f"{method}.yaml"
    if not path.is_file():
        raise RecipeError(f"no base recipe for {model} {method} ({path.name} missing)")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        overrides = {
            key: OverrideSpec(
                key=key,
                path=_path(spec["path"]),
                type=spec["type"],
                choices=tuple(spec["choices"]) if "choices" in spec else None,
                minimum=spec.get("min"),
                maximum=spec.get("max"),
                above=spec.get("above"),
                below=spec.get("below"),
                at_most=spec.get("at_most"),
                source=str(spec["source"]),
            )
            for key, spec in (doc.get("overrides") or {}).items()
        }
        template = RecipeTemplate(
            model=model,
            method=doc["method"],
            instance_type=doc["instance"]["type"],
            instance_count=int(doc["instance"]["count"]),
            instance_counts=tuple(int(c) for c in doc["instance"]["counts"]),
            instance_types=tuple(str(t) for t in doc["instance"]["types"]),
            max_runtime_hours=float(doc["max_runtime_hours"]),
            overrides=overrides,
            derived={
                _path(target): (_path(rule["from"]), float(rule["factor"]))
                for target, rule in (doc.get("derived") or {}).items()
            },
            recipe=doc["recipe"],
            tasks=doc.get("tasks") or {},
        )
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as error:
        raise RecipeError(f"{path}: malformed base recipe ({error})") from error
    for spec in overrides.values():
        try:
            _get(template.recipe, spec.path)
        except KeyError:
            raise RecipeError(f"{path}: override {spec.key} maps to missing field {'.'.join(spec.path)}") from None
        if not spec.source:
            raise RecipeError(f"{path}: override {spec.key} does not name the published range it follows")
        if spec.type in ("int", "float") and spec.choices is None and not _bounded(spec):
            raise RecipeError(f"{path}: numeric override {spec.key} needs finite lower and upper bounds")
    if template.method != method:
        raise RecipeError(f"{path}: method {template.method!r} does not match the file name")
    if template.instance_type not in template.instance_types:
        raise RecipeError(f"{path}: the default instance type {template.instance_type} is not in instance.types")
    return template


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bounded(spec: OverrideSpec) -> bool:
    lower = spec.minimum if spec.minimum is not None else spec.above
    return _number(lower) and _number(spec.maximum)


def _type_ok(spec: OverrideSpec, value: Any) -> bool:
    if value is None:
        return spec.choices is not None and None in spec.choices
    if spec.type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.type == "float":
        return _number(value)
    if spec.type == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def override_problems(template: RecipeTemplate, overrides: dict[str, Any]) -> list[tuple[str, str]]:
    """Every problem with ``overrides`` as ``(key, message)`` pairs; empty when they are all valid."""
    problems: list[tuple[str, str]] = []
    allowed = ", ".join(sorted(template.overrides))
    valid: dict[str, Any] = {}
    for key, value in overrides.items():
        spec = template.overrides.get(key)
        if spec is None:
            advice = next((f"{text}; " for target, text in _HINTS.get(key, []) if target in template.overrides), "")
            problems.append(
                (key, f"unknown override for {template.model} {template.method} ({advice}allowed: {allowed})")
            )
            continue
        if not _type_ok(spec, value) or (spec.choices is not None and value not in spec.choices):
            problems.append((key, f"{value!r} is not valid: expected {spec.describe()}"))
            continue
        if _number(value):
            allowed_range = f"(allowed: {spec.describe()})"
            if spec.minimum is not None and value < spec.minimum:
                problems.append((key, f"{value!r} is below the minimum {spec.minimum:g} {allowed_range}"))
                continue
            if spec.maximum is not None and value > spec.maximum:
                problems.append((key, f"{value!r} is above the maximum {spec.maximum:g} {allowed_range}"))
                continue
            if spec.above is not None and value <= spec.above:
                problems.append((key, f"{value!r} must be greater than {spec.above:g} {allowed_range}"))
                continue
        valid[key] = value
    for key, value in valid.items():
        spec = template.overrides[key]
        for other, strict in ((spec.below, True), (spec.at_most, False)):
            if other is None:
                continue
            limit = valid.get(other, template.default(other))
            if _number(limit) and (value >= limit if strict else value > limit):
                relation = "less than" if strict else "at most"
                problems.append((key, f"{value!r} must be {relation} {other} ({limit!r})"))
    return problems


def render(
    template: RecipeTemplate,
    *,
    job_name: str,
    model: NovaModel,
    model_location: str,
    instance_count: int,
    overrides: dict[str, Any],
    reward_lambda_arn: str | None = None,
    data_uri: str | None = None,
    task: str | None = None,
) -> dict[str, Any]:
    """The recipe tree of one job: base recipe, task sections, run fields, overrides, derivations."""
    problems = override_problems(template, overrides)
    if problems:
        raise ValueError("; ".join(f"{key}: {message}" for key, message in problems))
    if instance_count not in template.instance_counts:
        raise ValueError(f"{instance_count} instances: {template.method} accepts {list(template.instance_counts)}")
    recipe = copy.deepcopy(template.recipe)
    if template.method == "eval":
        if task not in template.tasks:
            raise ValueError(f"unknown evaluation task {task!r} (expected one of {sorted(template.tasks)})")
        _merge(recipe, template.tasks[task])
    run = recipe["run"]
    run["name"] = job_name
    run["model_type"] = model.model_type
    run["model_name_or_path"] = model_location
    run["replicas"] = instance_count
    if template.method == "rft":
        if not reward_lambda_arn or not data_uri:
            raise ValueError("RFT needs the grader's Lambda ARN and the dataset URI")
        run["reward_lambda_arn"] = reward_lambda_arn
        run["data_s3_path"] = data_uri
        recipe["training_config"]["rollout"]["rewards"]["api_endpoint"]["lambda_arn"] = reward_lambda_arn
    if task == "rft_eval":
        if not reward_lambda_arn:
            raise ValueError("rft_eval needs the grader's Lambda ARN")
        recipe["rl_env"]["reward_lambda_arn"] = reward_lambda_arn
    overridden = set()
    for key, value in overrides.items():
        spec = template.overrides[key]
        _set(recipe, spec.path, value)
        overridden.add(spec.path)
    for target, (source, factor) in template.derived.items():
        if target not in overridden:
            _set(recipe, target, max(1, round(_get(recipe, source) * factor)))
    return recipe


RECIPE_CONTAINER_PATH = "/opt/ml/input/data/recipe/recipe.yaml"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def hyperparameters(recipe: dict[str, Any]) -> dict[str, str]:
    """The ``HyperParameters`` AWS's SageMaker Python SDK derives from a rendered Nova recipe.

    ``sagemaker_recipe_local_path`` (the ``recipe`` channel inside the container); ``base_model``
    = ``run.model_name_or_path``, or ``base_model_location`` when that is an ``s3://`` checkpoint;
    ``reward_lambda_arn`` when the recipe sets ``run.reward_lambda_arn`` (RFT); ``eval_lambda_arn``
    only for an evaluation recipe whose ``processor.lambda_arn`` is set (custom ``gen_qa`` metrics).
    Nothing else: no ``model_type``, and an ``rft_eval`` grader stays in ``rl_env.reward_lambda_arn``.
    """
    run = recipe.get("run") or {}
    values = {"sagemaker_recipe_local_path": RECIPE_CONTAINER_PATH}
    location = _text(run.get("model_name_or_path"))
    if location.startswith("s3://"):
        values["base_model_location"] = location
    elif location:
        values["base_model"] = location
    if recipe.get("evaluation"):
        processor = recipe.get("processor") or {}
        eval_lambda = _text(processor.get("lambda_arn"))
        if eval_lambda and "{{" not in eval_lambda:
            values["eval_lambda_arn"] = eval_lambda
    reward_lambda = _text(run.get("reward_lambda_arn"))
    if reward_lambda:
        values["reward_lambda_arn"] = reward_lambda
    return values


def to_yaml(recipe: dict[str, Any]) -> str:
    """The recipe as the YAML file the container reads."""
    return str(yaml.safe_dump(recipe, sort_keys=False, default_flow_style=False))
