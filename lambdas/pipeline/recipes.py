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

Each base recipe holds an official recipe of that repository key for key, default for default
(``follows`` records its path, the repository version and commit): the project's own choices
(``project``: empty placeholder paths, a different default) and a run's overrides are applied on
top when a job's recipe is rendered, and the OmegaConf interpolations of the official recipe
(``${oc.select:training_config.max_steps}``...) are then resolved as the SageMaker Python SDK
resolves them: after the overrides are merged, so an interpolated field follows an overridden one.
YAML is read as OmegaConf reads it (``1e-5`` is a number, not a string).

Maintainers compare the base recipes with a checkout of the official repository::

    python -m lambdas.pipeline.recipes compare PATH_TO_CHECKOUT

which lists every missing key, extra key and different default, and every override whose range is
wider than the published template entry its ``source`` names, and exits 1 when there is any.

Pure module: no AWS calls; PyYAML only.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
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


_FLOAT_TAG = "tag:yaml.org,2002:float"
# OmegaConf reads YAML 1.2 numbers: an exponent needs no dot ("1e-5"), which PyYAML's YAML 1.1
# resolver would leave a string.
_FLOAT = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


# PyYAML's safe loader with OmegaConf's number rules.
_RecipeLoader: Any = type("_RecipeLoader", (yaml.SafeLoader,), {})

_RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RecipeLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """A recipe YAML document read as OmegaConf (and so the SageMaker Python SDK) reads it."""
    return yaml.load(text, Loader=_RecipeLoader)


# The resolvers the SDK registers before it resolves a recipe, besides OmegaConf's oc.select.
_RESOLVERS: dict[str, Callable[..., Any]] = {
    "multiply": lambda x, y: x * y,
    "divide_ceil": lambda x, y: int(math.ceil(x / y)),
    "divide_floor": lambda x, y: int(math.floor(x / y)),
    "add": lambda *numbers: sum(numbers),
}
_INTERPOLATION = re.compile(r"\$\{([^${}]*)\}")


def resolve(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` with every ``${...}`` interpolation replaced by its value, in place.

    ``${a.b}`` and ``${oc.select:a.b}`` (``${oc.select:a.b,default}``) take the value at that
    absolute path (``oc.select`` gives its default, else null, when the path is missing); the
    SDK's resolvers ``multiply``, ``divide_ceil``, ``divide_floor`` and ``add`` compute from their
    arguments. A string that is one interpolation takes the value's type; text around an
    interpolation makes a string.
    """

    def lookup(dotted: str, where: str, depth: int) -> Any:
        try:
            value = _get(tree, _path(dotted))
        except KeyError:
            raise RecipeError(f"{where}: interpolation refers to missing key {dotted}") from None
        return evaluate(value, dotted, depth + 1)

    def argument(text: str) -> Any:
        text = text.strip()
        return load_yaml(text) if text else None

    def call(expression: str, where: str, depth: int) -> Any:
        name, _, rest = expression.partition(":")
        if not rest:
            return lookup(name.strip(), where, depth)
        args = rest.split(",")
        if name == "oc.select":
            try:
                value = _get(tree, _path(args[0].strip()))
            except KeyError:
                return argument(args[1]) if len(args) > 1 else None
            return evaluate(value, args[0].strip(), depth + 1)
        if name not in _RESOLVERS:
            raise RecipeError(f"{where}: unknown resolver {name!r} in ${{{expression}}}")
        return _RESOLVERS[name](*(argument(arg) for arg in args))

    def evaluate(value: Any, where: str, depth: int) -> Any:
        if depth > 32:
            raise RecipeError(f"{where}: interpolations refer to each other in a loop")
        if not isinstance(value, str) or "${" not in value:
            return value
        while True:  # innermost first: ${multiply:${a.n},4}
            whole = _INTERPOLATION.fullmatch(value)
            if whole:
                return call(whole.group(1), where, depth)
            inner = _INTERPOLATION.search(value)
            if inner is None:
                return value
            value = value[: inner.start()] + str(call(inner.group(1), where, depth)) + value[inner.end() :]

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            where = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, where + ".")
            else:
                node[key] = evaluate(value, where, 0)

    walk(tree, "")
    return tree


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
class BaseRecipe:
    """An official recipe as the project holds it: its tree and where it comes from."""

    path: str
    repository: str
    version: str
    commit: str
    tree: dict[str, Any]


@dataclass(frozen=True)
class RecipeTemplate:
    """A base recipe with its defaults and the overrides it accepts.

    ``bases`` holds the official recipe each variant follows: the method's own (key ``sft`` or
    ``rft``) or one per evaluation task (``gen_qa``, ``rft_eval``); ``recipe`` is the first, whose
    values are the override defaults. ``settings`` are the project's own values (dotted path ->
    value) applied on top of every base.
    """

    model: str
    method: str
    instance_type: str
    instance_count: int
    instance_counts: tuple[int, ...]
    instance_types: tuple[str, ...]
    max_runtime_hours: float
    overrides: dict[str, OverrideSpec]
    derived: dict[tuple[str, ...], tuple[tuple[str, ...], float]]
    bases: dict[str, BaseRecipe]
    settings: dict[tuple[str, ...], Any] = field(default_factory=dict)

    @property
    def recipe(self) -> dict[str, Any]:
        return next(iter(self.bases.values())).tree

    @property
    def tasks(self) -> tuple[str, ...]:
        """The evaluation tasks of an evaluation template (empty for training)."""
        return tuple(self.bases) if self.method == "eval" else ()

    def default(self, key: str) -> Any:
        """The value of override ``key`` before a run overrides it: the project's setting, else the official one."""
        path = self.overrides[key].path
        return self.settings[path] if path in self.settings else _get(self.recipe, path)


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


def available(model: str, method: str, recipes_dir: Path = RECIPES_DIR) -> bool:
    return (recipes_dir / model / f"{method}.yaml").is_file()


@cache
def load_template(model: str, method: str, recipes_dir: Path = RECIPES_DIR) -> RecipeTemplate:
    """The base recipe of ``model`` for ``method`` (``sft``, ``rft`` or ``eval``), read once."""
    return read_template(model, method, recipes_dir)


def read_template(model: str, method: str, recipes_dir: Path = RECIPES_DIR) -> RecipeTemplate:
    """The base recipe of ``model`` for ``method`` read from its file, checked."""
    path = recipes_dir / model / f"{method}.yaml"
    if not path.is_file():
        raise RecipeError(f"no base recipe for {model} {method} ({path.name} missing)")
    try:
        doc = load_yaml(path.read_text(encoding="utf-8"))
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
        variants = doc["tasks"] if method == "eval" else {method: doc}
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
            bases={
                name: BaseRecipe(
                    path=str(variant["follows"]["recipe"]),
                    repository=str(variant["follows"]["repository"]),
                    version=str(variant["follows"]["version"]),
                    commit=str(variant["follows"]["commit"]),
                    tree=dict(variant["recipe"]),
                )
                for name, variant in variants.items()
            },
            settings={_path(dotted): value for dotted, value in (doc.get("project") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as error:
        raise RecipeError(f"{path}: malformed base recipe ({error})") from error
    for name, base in template.bases.items():
        for what, target in [(f"override {spec.key}", spec.path) for spec in overrides.values()] + [
            (f"project setting {'.'.join(dotted)}", dotted) for dotted in template.settings
        ]:
            try:
                _get(base.tree, target)
            except KeyError:
                raise RecipeError(
                    f"{path}: {what} maps to {'.'.join(target)}, which the official recipe {base.path} ({name}) "
                    "does not have"
                ) from None
    for spec in overrides.values():
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
    """The recipe tree of one job.

    The official recipe the method (or evaluation task) follows, then the project's settings, the
    run fields, the overrides and the derivations; interpolations are resolved last, as the SDK
    resolves them after merging overrides.
    """
    problems = override_problems(template, overrides)
    if problems:
        raise ValueError("; ".join(f"{key}: {message}" for key, message in problems))
    if instance_count not in template.instance_counts:
        raise ValueError(f"{instance_count} instances: {template.method} accepts {list(template.instance_counts)}")
    variant = template.method
    if template.method == "eval":
        if task not in template.tasks:
            raise ValueError(f"unknown evaluation task {task!r} (expected one of {sorted(template.tasks)})")
        variant = task
    recipe = copy.deepcopy(template.bases[variant].tree)
    for dotted, value in template.settings.items():
        _set(recipe, dotted, copy.deepcopy(value))
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
    return resolve(recipe)


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


def _same(ours: Any, theirs: Any) -> bool:
    """Equal values of the same YAML type (``1`` and ``1.0`` differ: the container reads both)."""
    return type(ours) is type(theirs) and ours == theirs


def _tree_differences(ours: Any, theirs: Any, prefix: str = "") -> Iterator[str]:
    """Every key the official tree has that ours lacks, every extra key, every different value."""
    for key, value in theirs.items():
        where = f"{prefix}{key}"
        if key not in ours:
            yield f"missing key {where} (official default {value!r})"
        elif isinstance(value, dict) and isinstance(ours[key], dict):
            yield from _tree_differences(ours[key], value, where + ".")
        elif not _same(ours[key], value):
            yield f"different default {where}: project {ours[key]!r}, official {value!r}"
    for key, value in ours.items():
        if key not in theirs:
            yield f"extra key {prefix}{key} (project value {value!r}; not in the official recipe)"


def _shipped(recipes_dir: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(recipes_dir.glob("*/*.yaml")):
        yield path.parent.name, path.stem


def compare(checkout: Path, recipes_dir: Path = RECIPES_DIR) -> list[str]:
    """Every difference between the project's base recipes and an official-recipes checkout.

    Each line names the project file, the variant (method or evaluation task), the official
    recipe it follows and the difference; empty when every base recipe equals its official one.
    """
    differences: list[str] = []
    for model, method in _shipped(recipes_dir):
        template = read_template(model, method, recipes_dir)
        for name, base in template.bases.items():
            where = f"{model}/{method}.yaml [{name}] follows {base.path}"
            official_path = checkout / base.path
            if not official_path.is_file():
                differences.append(f"{where}: the checkout has no such file")
                continue
            try:
                official = load_yaml(official_path.read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                differences.append(f"{where}: the official recipe does not parse ({error})")
                continue
            if not isinstance(official, dict):
                differences.append(f"{where}: the official recipe is not a mapping")
                continue
            differences.extend(f"{where}: {line}" for line in _tree_differences(base.tree, official))
    return differences


TEMPLATES_PATH = "launcher/recipe_templatization/nova/nova_recipe_template_parameters.json"
_TEMPLATE_SOURCE = re.compile(r"^(nova_\w+)\.(\w+)\b")


def _published_values(entry: dict[str, Any]) -> tuple[float | None, float | None, list[Any] | None]:
    enum = entry.get("enum")
    return entry.get("min"), entry.get("max"), list(enum) if isinstance(enum, list) else None


def _wider(spec: OverrideSpec, entry: dict[str, Any]) -> str | None:
    """How ``spec`` accepts more than the published ``entry``, or None when it accepts no more."""
    low, high, enum = _published_values(entry)
    if spec.choices is not None:
        extra = [c for c in spec.choices if c is not None and not _allowed(c, low, high, enum)]
        return f"accepts {extra}" if extra else None
    lower = spec.minimum if spec.minimum is not None else spec.above
    if enum is not None:
        return f"accepts a range ({spec.describe()}) where only {enum} are published"
    if low is not None and (lower is None or lower < low):
        return f"lower bound {lower} is below the published minimum {low}"
    if high is not None and (spec.maximum is None or spec.maximum > high):
        return f"upper bound {spec.maximum} is above the published maximum {high}"
    return None


def _allowed(value: Any, low: float | None, high: float | None, enum: list[Any] | None) -> bool:
    if enum is not None:
        return value in enum
    return (low is None or value >= low) and (high is None or value <= high)


def range_differences(checkout: Path, recipes_dir: Path = RECIPES_DIR) -> list[str]:
    """Every override whose ``source`` names a published template entry yet accepts more than it.

    The entry is ``templates.<template>.recipe_override_parameters.<parameter>`` of the parameter
    templates file in the checkout; a missing template, parameter or file is a difference too.
    """
    path = checkout / TEMPLATES_PATH
    try:
        templates = json.loads(path.read_text(encoding="utf-8"))["templates"]
    except (OSError, ValueError, KeyError) as error:
        return [f"{TEMPLATES_PATH}: cannot read the parameter templates ({error})"]
    differences = []
    for model, method in _shipped(recipes_dir):
        for spec in read_template(model, method, recipes_dir).overrides.values():
            match = _TEMPLATE_SOURCE.match(spec.source)
            if match is None:
                continue
            where = f"{model}/{method}.yaml override {spec.key} (source {match.group(0)})"
            entry = (templates.get(match.group(1)) or {}).get("recipe_override_parameters", {}).get(match.group(2))
            if not isinstance(entry, dict):
                differences.append(f"{where}: the parameter templates have no such entry")
            elif problem := _wider(spec, entry):
                differences.append(f"{where}: {problem}")
    return differences


def recorded_versions(recipes_dir: Path = RECIPES_DIR) -> set[tuple[str, str, str]]:
    """The (repository, version, commit) triples the base recipes record."""
    return {
        (base.repository, base.version, base.commit)
        for model, method in _shipped(recipes_dir)
        for base in read_template(model, method, recipes_dir).bases.values()
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``compare CHECKOUT``: print every difference; 0 when there is none, 1 otherwise, 2 for a bad checkout."""
    parser = argparse.ArgumentParser(
        prog="python -m lambdas.pipeline.recipes",
        description="Compare the project's base recipes with a checkout of the official Nova recipes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "compare", help="list every missing key, extra key, different default and override range wider than AWS's"
    )
    command.add_argument("checkout", type=Path, help="a checkout (work tree) of aws/sagemaker-hyperpod-recipes")
    command.add_argument("--recipes-dir", type=Path, default=RECIPES_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.checkout / "recipes_collection").is_dir():
        print(f"{args.checkout}: not a checkout of the official recipes (no recipes_collection/)", file=sys.stderr)
        return 2
    for repository, version, commit in sorted(recorded_versions(args.recipes_dir)):
        print(f"base recipes follow {repository} {version} (commit {commit})")
    differences = compare(args.checkout, args.recipes_dir) + range_differences(args.checkout, args.recipes_dir)
    for line in differences:
        print(line)
    shipped = sum(len(read_template(m, k, args.recipes_dir).bases) for m, k in _shipped(args.recipes_dir))
    print(f"{shipped} official recipes and the override ranges compared, {len(differences)} difference(s)")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
