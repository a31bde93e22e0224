"""Packaging and start-up guarantees: one namespace across three roots, a cheap CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BLOCK_TF = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tensorflow_datasets'):
            raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, _Block())
"""


def _py(code: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(cwd),
                          timeout=120)


def test_operator_directory_does_not_shadow_stdlib():
    # From the repository root (where ./operator exists) and with the root on sys.path.
    proc = _py("import sys; sys.path.insert(0, '.'); import operator; print(operator.__file__); "
               "print(operator.itemgetter(1)([0, 7]))")
    assert proc.returncode == 0, proc.stderr
    path, value = proc.stdout.split()
    assert "/operator/" not in path and path.endswith("operator.py")
    assert value == "7"


def test_one_namespace_over_three_source_roots():
    proc = _py("import headstart.api, headstart.sdk, headstart.operator, headstart.trainer, headstart; "
               "print(len(list(headstart.__path__)))")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 3
    for root in ("sdk", "operator", "trainer"):
        assert not (REPO / root / "headstart" / "__init__.py").exists()


def test_cli_help_imports_neither_tensorflow_nor_kubernetes():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom headstart.sdk.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'kubernetes', 'kopf') if m in sys.modules]\n"
            "print(heavy)")
    proc = _py(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_validate_works_without_tensorflow():
    code = BLOCK_TF + ("sys.argv = ['headstart', 'validate', 'examples/flowers-xception.yaml']\n"
                       "from headstart.sdk.cli import main\nmain()")
    proc = _py(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all valid" in proc.stderr
