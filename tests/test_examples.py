"""The README's embedding example runs as printed and accounts for every item."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "embed.py"


def test_the_readme_shows_the_example_as_it_is():
    code = EXAMPLE.read_text().split('"""', 2)[2].strip()  # less the module docstring
    assert code in (ROOT / "README.md").read_text()


def test_embed_example_runs_and_loses_nothing():
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    counts = dict(re.findall(r"(\w+)=(\d+)", out.stdout.splitlines()[-1]))
    assert int(counts["lost"]) == 0
    assert int(counts["completed"]) + int(counts["dead_lettered"]) == 500
