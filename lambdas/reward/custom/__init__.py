"""Reward code written by the user: one module per grader, ``lambdas/reward/custom/<module>.py``.

A module is selected with ``{"type": "python", "module": "<module>"}`` (in a preset
file or in ``GRADER_SPEC``) or by its name alone, like a preset (``--preset <module>``,
``"grader": "<module>"`` in a run, one deployed function per module). It exposes either

- ``lambda_grader(samples: list[dict]) -> list[dict]``: the published reward-function
  shape; each result is ``{"id", "aggregate_reward_score", "metrics_list"}``; or
- ``grade(sample: dict) -> float | {"score": float, "metrics": {name: value}}``.

Optional module attributes: ``SCORE_RANGE = (low, high)`` (default ``(0.0, 1.0)``) and
``__version__`` (default: a digest of the module's source). A package
(``<module>/__init__.py``) works too. Third-party dependencies go in
``<module>.requirements.txt`` beside the module, or ``<module>/requirements.txt`` in a
package; ``make layer`` installs them for the Lambda platform into the module's own
layer. :mod:`lambdas.reward.harness` runs the code and repairs what it returns.
"""

from __future__ import annotations

import re
from pathlib import Path

CUSTOM_DIR = Path(__file__).resolve().parent
PACKAGE = __name__
# Deployable names: a Python module name that is also a grader name (lowercase, digits, '_').
MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def module_source(name: str, custom_dir: Path | None = None) -> list[Path]:
    """The source files of custom module ``name`` (empty when there is no such module)."""
    custom_dir = custom_dir or CUSTOM_DIR
    single = custom_dir / f"{name}.py"
    if single.is_file():
        return [single]
    package = custom_dir / name
    if (package / "__init__.py").is_file():
        return sorted(path for path in package.rglob("*.py") if "__pycache__" not in path.parts)
    return []


def requirements_file(name: str, custom_dir: Path | None = None) -> Path | None:
    """The module's own ``requirements.txt``, or None when it has none."""
    custom_dir = custom_dir or CUSTOM_DIR
    for path in (custom_dir / f"{name}.requirements.txt", custom_dir / name / "requirements.txt"):
        if path.is_file():
            return path
    return None


def custom_modules(custom_dir: Path | None = None) -> list[str]:
    """Names of the custom grader modules, sorted (files and packages whose names start with '_' are not graders)."""
    custom_dir = custom_dir or CUSTOM_DIR
    names = {path.stem for path in custom_dir.glob("*.py")}
    names |= {path.parent.name for path in custom_dir.glob("*/__init__.py")}
    return sorted(name for name in names if MODULE_NAME.match(name))
