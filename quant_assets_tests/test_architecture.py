"""The house rules hold: the import contracts of pyproject.toml (import-linter), modules of a
readable size, and a command line that answers ``--help`` without loading the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "quant_assets"
#: Longest module allowed: past this a file holds more than one job.
MAX_MODULE_LINES = 600


def test_import_contracts_hold():
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout, result.stdout


def test_no_module_is_too_long():
    lengths = {str(path.relative_to(REPO)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    too_long = {path: n for path, n in lengths.items() if n > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["sql", "--help"], ["screen", "--no-such-flag"]])
def test_cli_help_and_argument_errors_load_no_heavy_library(argv):
    probe = (
        "import sys\n"
        "from quant_assets import cli\n"
        "try:\n"
        f"    cli.main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('dagster', 'duckdb', 'polars', 'numpy', 'aiohttp', 'matplotlib')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", "import json\n" + probe], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
