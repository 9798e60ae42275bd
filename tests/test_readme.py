"""The README's quick start is exactly two commands, and CI runs the README's test command."""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [ln.split("#", 1)[0].strip() for ln in block.splitlines() if ln.split("#", 1)[0].strip()]


def test_quick_start_is_two_commands_that_exist():
    cmds = quick_start_commands()
    assert cmds == ["./start.sh", "./test.sh"]
    for c in cmds:
        path = ROOT / c
        assert path.exists() and os.access(path, os.X_OK), c


def test_ci_runs_the_readme_test_command():
    test_cmd = quick_start_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(rf"^{re.escape(test_cmd)}( |$)", ci, re.M), ".ci/run must call " + test_cmd
    assert "apt-get install" in ci and "chromium" in ci
    # the test command propagates pytest's exit status (5 = no tests collected is a failure)
    assert "exec .venv/bin/python -m pytest" in (ROOT / "test.sh").read_text()
    assert "set -euo pipefail" in ci
