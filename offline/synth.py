"""The CDK app synthesized in-process, exactly as ``cdk synth`` does (cdk-nag gate included).

:func:`synthesize` builds the app once per process and context, into a temporary
folder removed when the process exits; every caller with the same context gets
the same :class:`Synthesized`. :func:`synthesize_into` builds it into a given
folder, every time.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

STACK_NAME = "NovaCustomization"

_CACHE: dict[str, Synthesized] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Synthesized:
    """A synthesized cloud assembly: its folder and the stack's template."""

    outdir: Path
    template_json: dict

    @cached_property
    def template(self) -> Any:
        """The template as ``aws_cdk.assertions.Template``, for property assertions."""
        from aws_cdk.assertions import Template

        return Template.from_json(self.template_json)

    def resources(self, resource_type: str) -> dict[str, dict]:
        """Logical ID -> resource, for every resource of ``resource_type``."""
        return {k: v for k, v in self.template_json["Resources"].items() if v["Type"] == resource_type}

    def definition(self, state_machine_logical_id: str) -> str:
        """The state machine's definition as deployed (before substitutions)."""
        from stacks.assembly import definition_text

        properties = self.template_json["Resources"][state_machine_logical_id]["Properties"]
        return definition_text(properties, self.outdir, STACK_NAME)


def synthesize(context: Mapping[str, Any] | None = None) -> Synthesized:
    """The app synthesized with ``context`` (cdk.json's context otherwise); once per process and context."""
    key = json.dumps(dict(context or {}), sort_keys=True)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _synthesize(dict(context) if context else None)
        return _CACHE[key]


def _synthesize(context: dict | None) -> Synthesized:
    outdir = Path(tempfile.mkdtemp(prefix="offline-cdk-"))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    return synthesize_into(outdir, context)


def synthesize_into(outdir: Path, context: Mapping[str, Any] | None = None) -> Synthesized:
    """Synthesize the app into ``outdir``, uncached (a folder the caller keeps)."""
    from app import build_app  # the repository root is on sys.path (pytest rootdir, ``python -m``)

    build_app(context=dict(context) if context else None, outdir=str(outdir)).synth()
    template = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
    return Synthesized(outdir=outdir, template_json=template)
