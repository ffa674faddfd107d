"""The statistics tests run without MXNet: conftest.py and the package load it only when a
test needs a network or the data (gluon_resnet/__init__.py imports it lazily)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATISTICS = ("tests/test_decide.py", "tests/test_stats.py", "tests/test_collapse.py")

# A pytest plugin for the child: `import mxnet` fails there (None in sys.modules), so any
# import of it, by conftest.py, a test module or a test, is an error naming the test.
NO_MXNET = '''
import sys
sys.modules["mxnet"] = None

def pytest_sessionfinish(session):
    assert sys.modules.get("mxnet") is None
'''


def test_statistics_tests_import_no_mxnet(tmp_path):
    (tmp_path / "no_mxnet.py").write_text(NO_MXNET)
    # Every module-level import is collected and every test's fixtures are set up (slow ones
    # included; --setup-only runs no test body, which the statistics tests' own run does);
    # test bodies import none of the project's modules (checked below), so they load no
    # more than collection and set-up do.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no_mxnet", "-p", "no:cacheprovider",
         "-p", "no:xdist", "-q", "--setup-only", *STATISTICS],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for path in STATISTICS:  # each file's tests were set up, not skipped or deselected
        assert f"{path}::" in proc.stdout, proc.stdout[-3000:]
    for path in STATISTICS:  # no project module or MXNet imported inside a test, where
        inner = re.findall(  # collection cannot see it
            r"^[ \t]+(?:import|from) (?:gluon_resnet|experiments|run_all|conftest|mxnet|d2l)\b",
            (ROOT / path).read_text(), re.MULTILINE)
        assert not inner, f"{path}: imported inside a test: {inner}"
