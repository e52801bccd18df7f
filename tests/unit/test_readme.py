"""The README's copy-paste examples stay valid, and every file refers only to documents that exist in the repository."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from lambdas.pipeline.validation import input_problems
from lambdas.reward.engine import compile_spec
from lambdas.reward.presets import list_presets, preset_from_document

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)```", README, flags=re.S)


def test_the_console_run_input_example_is_accepted_as_it_is() -> None:
    run_inputs = [b for b in _json_blocks() if '"datasets"' in b]
    assert run_inputs, "the README shows no run input"
    for block in run_inputs:
        payload = json.loads(block.replace("<data bucket>", "example-data-bucket"))
        assert input_problems(payload, data_bucket="example-data-bucket", graders=list_presets()) == []


def test_the_add_a_grader_example_is_a_valid_preset() -> None:
    presets = [b for b in _json_blocks() if '"spec"' in b]
    assert presets, "the README shows no grader preset"
    for block in presets:
        document = json.loads(re.sub(r"^\s+", "", block, flags=re.M).replace("<name>", "example"))
        preset = preset_from_document(document, "README")
        assert compile_spec(preset.spec, name=preset.name).score_range[1] > 0


# -- references between files stay inside the repository and point at files that exist -----------------

REPO_ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCE = {".git", ".venv", ".venv-scan", "node_modules", "cdk.out", ".build", ".rehearsal", "__pycache__"}
# A Markdown link target: [text](target).
_MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
# A file name ending in .md, with an optional absolute, relative or folder path in front of it.
_MARKDOWN_NAME = re.compile(r"(?<![\w/.-])((?:/|\.{1,2}/)?(?:[\w.-]+/)*[\w.-]*\w\.md)\b")
# A path under the repository's docs/ folder.
_DOCS_PATH = re.compile(r"(?<![\w./-])docs/(?:[\w./-]*[\w/])?")
# A relative path that climbs out of its folder: ../x, ../../x.
_PARENT_PATH = re.compile(r"(?<![\w.])((?:\.\./)+[\w.-]+)")


def _repository_files() -> list[Path]:
    """Tracked files and new files not ignored (git), or every file outside build and tool folders."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        files = [REPO_ROOT / name for name in listing.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        files = [p for p in REPO_ROOT.rglob("*") if not _NOT_SOURCE.intersection(p.relative_to(REPO_ROOT).parts)]
    return sorted(p for p in files if p.is_file() and not p.is_symlink())


def _inside_repository(path: Path) -> bool:
    return path.resolve().is_relative_to(REPO_ROOT)


def reference_problems(path: Path, text: str, known_names: set[str]) -> list[str]:
    """Every reference in ``text`` (the content of ``path``) to a file outside the repository or missing."""
    problems = []
    here = path.parent
    if path.suffix == ".md":
        for target in _MARKDOWN_LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            linked = here / target.split("#", 1)[0]
            if not (_inside_repository(linked) and linked.exists()):
                problems.append(f"link to {target}")
    for name in _MARKDOWN_NAME.findall(text):
        candidates = [] if name.startswith("/") else [REPO_ROOT / name, here / name]
        if any(_inside_repository(c) and c.is_file() for c in candidates):
            continue
        if "/" not in name and name in known_names:
            continue  # a file named by its name alone, e.g. README.md
        problems.append(f"document {name}")
    for docs_path in _DOCS_PATH.findall(text):
        if not (REPO_ROOT / docs_path).exists():
            problems.append(f"path {docs_path}")
    for parent_path in _PARENT_PATH.findall(text):
        if not _inside_repository(here / parent_path):
            problems.append(f"path {parent_path} outside the repository")
    return problems


def test_files_refer_only_to_documents_inside_the_repository_that_exist() -> None:
    files = _repository_files()
    assert any(p.relative_to(REPO_ROOT).parts[0] == "docs" for p in files), "docs/ is missing"
    known_names = {p.name for p in files}
    problems = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        problems += [f"{path.relative_to(REPO_ROOT)}: {p}" for p in reference_problems(path, text, known_names)]
    assert not problems, "\n".join(problems)


def test_the_reference_check_catches_outside_and_missing_documents() -> None:
    # Given references of every kind the check must refuse (spelled in pieces so this file has none)
    page = REPO_ROOT / "docs" / "README.md"
    outside = "../" + "elsewhere/NOTES" + ".md"
    bad = [
        f"see [notes]({outside})",
        "see " + "/srv/notes/PLAN" + ".md",
        "see " + "docs/contracts/" + "no-such-page" + ".md",
        "see " + "NO_SUCH_FILE" + ".md",
        "see " + "../" * 4 + "shared",
    ]
    known = {"README.md"}
    # Then each one is reported, and the same page's good references are not
    for text in bad:
        assert reference_problems(page, text, known), text
    good = "[arch](architecture.md), docs/contracts/datasets.md, README.md, [home](../README" + ".md#deploy)"
    assert reference_problems(page, good, known) == []
