"""Synthesize the app once per test session and hand out its template and cloud assembly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aws_cdk.assertions import Template

STACK_NAME = "NovaCustomization"


@dataclass(frozen=True)
class Synthesized:
    """The synthesized cloud assembly of the app, nag gate included."""

    outdir: Path
    template_json: dict

    @property
    def template(self) -> Template:
        return Template.from_json(self.template_json)

    def definition(self, state_machine_logical_id: str) -> str:
        """The state machine's definition as deployed (before substitutions)."""
        from stacks.assembly import definition_text

        properties = self.template_json["Resources"][state_machine_logical_id]["Properties"]
        return definition_text(properties, self.outdir, STACK_NAME)

    def resources(self, resource_type: str) -> dict[str, dict]:
        return {k: v for k, v in self.template_json["Resources"].items() if v["Type"] == resource_type}


def synthesize(outdir: Path, context: dict | None = None) -> Synthesized:
    """Build and synthesize the app (cdk-nag validation plugin on) into ``outdir``."""
    from app import build_app

    build_app(context=context, outdir=str(outdir)).synth()
    template = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
    return Synthesized(outdir=outdir, template_json=template)
