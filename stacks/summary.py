"""Print what a synthesized cloud assembly holds: stacks, resources by type, state machine states.

Usage: ``python -m stacks.summary cdk.out``
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from stacks.assembly import definition_text


def _states(definition: dict[str, Any], depth: int = 0) -> list[str]:
    """State names in definition order, branches of Parallel/Map indented beneath their state."""
    lines: list[str] = []
    for name, state in definition.get("States", {}).items():
        lines.append(f"{'  ' * depth}- {name} ({state['Type']})")
        for branch in state.get("Branches", []):
            lines.extend(_states(branch, depth + 1))
        if "ItemProcessor" in state or "Iterator" in state:
            lines.extend(_states(state.get("ItemProcessor") or state["Iterator"], depth + 1))
    return lines


def summarize(assembly_dir: Path) -> str:
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    out: list[str] = []
    for artifact_id, artifact in manifest["artifacts"].items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        template = json.loads((assembly_dir / artifact["properties"]["templateFile"]).read_text())
        resources = template.get("Resources", {})
        out.append(f"Stack {artifact_id} ({artifact['environment']}): {len(resources)} resources")
        for resource_type, count in sorted(Counter(r["Type"] for r in resources.values()).items()):
            out.append(f"  {count:3d}  {resource_type}")
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::StepFunctions::StateMachine":
                continue
            body = definition_text(resource["Properties"], assembly_dir, artifact_id)
            out.append(f"State machine {logical_id}:")
            out.extend(f"  {line}" for line in _states(json.loads(body)))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    assembly_dir = Path(argv[1] if len(argv) > 1 else "cdk.out")
    if not (assembly_dir / "manifest.json").exists():
        print(f"error: {assembly_dir}/manifest.json not found: synthesize first (make synth)", file=sys.stderr)
        return 2
    print(summarize(assembly_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
