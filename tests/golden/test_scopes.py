"""Golden tests of the VS Code grammar (editors/vscode/syntaxes/gen.tmLanguage.json): every spec
tokenized by VS Code's own TextMate engine (vscode-textmate with Oniguruma, through
editors/vscode/scripts/scopes.js), one line per source line with each token's scope.

scripts/setup.sh installs the extension's npm packages; `pytest tests/golden --update-golden`
rewrites the snapshots (review the diff).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EDITOR = ROOT / "editors" / "vscode"
SPECS = sorted((ROOT / "specs").glob("*.gen"))
SNAPSHOTS = Path(__file__).parent / "scopes"


def tokenized(paths: list[Path]) -> dict[str, list[list[list[str]]]]:
    """file name -> per line, [text, innermost scope] of each token."""
    result = subprocess.run(["node", str(EDITOR / "scripts" / "scopes.js"), *map(str, paths)],
                            capture_output=True, text=True, check=True)
    return {Path(name).name: lines for name, lines in json.loads(result.stdout).items()}


def snapshot(lines: list[list[list[str]]]) -> str:
    """`3: model<storage.type.declaration> VAE<entity.name.variable>` for each line with scoped tokens."""
    out = []
    for number, tokens in enumerate(lines, 1):
        scoped = [f"{text.strip()}<{scope.removesuffix('.gen')}>" for text, scope in tokens
                  if scope != "source.gen" and text.strip()]
        if scoped:
            out.append(f"{number}: " + " ".join(scoped))
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def scopes() -> dict[str, list[list[list[str]]]]:
    return tokenized(SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_scopes(spec: Path, scopes, update_golden: bool) -> None:
    got = snapshot(scopes[spec.name])
    expected = SNAPSHOTS / f"{spec.stem}.scopes"
    if update_golden:
        SNAPSHOTS.mkdir(exist_ok=True)
        expected.write_text(got, encoding="utf-8")
    assert expected.exists(), f"no snapshot {expected.name}: run pytest tests/golden --update-golden"
    assert got == expected.read_text(encoding="utf-8")
