"""Read what a synthesized cloud assembly holds, for tools and tests that work offline.

The state machine's definition is deployed as a file asset (``DefinitionS3Location``)
with ``DefinitionSubstitutions``; :func:`definition_text` finds that file in the
assembly so the summary, the definition tests and the rehearsal read exactly what
CloudFormation will read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class AssemblyError(LookupError):
    """The assembly does not hold what was asked for."""


def definition_text(properties: Mapping[str, Any], assembly_dir: Path, stack_name: str) -> str:
    """The definition of an ``AWS::StepFunctions::StateMachine`` (placeholders not yet substituted)."""
    inline = properties.get("DefinitionString")
    if isinstance(inline, str):
        return inline
    location = properties.get("DefinitionS3Location")
    if not isinstance(location, Mapping) or not isinstance(location.get("Key"), str):
        raise AssemblyError("the state machine has neither a DefinitionString nor a file-asset DefinitionS3Location")
    manifest_file = assembly_dir / f"{stack_name}.assets.json"
    manifest = json.loads(manifest_file.read_text())
    for asset in manifest.get("files", {}).values():
        if any(d.get("objectKey") == location["Key"] for d in asset.get("destinations", {}).values()):
            return (assembly_dir / str(asset["source"]["path"])).read_text()
    raise AssemblyError(f"definition asset {location['Key']} is not in {manifest_file.name}")
