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


def _third_party_imports(root: Path) -> set[str]:
    """Top-level modules imported anywhere under ``root`` that are neither stdlib nor headstart."""
    import ast

    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("headstart", "__future__")}


def test_the_trainer_imports_only_what_its_extra_and_the_base_install_provide():
    """The trainer image installs `.[trainer]`: no scikit-learn, no Pillow, nothing the demo needs."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    trainer_extra = project["optional-dependencies"]["trainer"]
    assert not any(dep.startswith(("scikit-learn", "pillow", "scipy")) for dep in trainer_extra)
    # distribution -> the modules it provides, for the ones whose names differ
    provides = {"tensorflow": {"tensorflow", "keras"}, "tensorflow-datasets": {"tensorflow_datasets"},
                "pyyaml": {"yaml"}, "importlib-resources": {"importlib_resources"}}
    allowed: set[str] = {"numpy"}  # a dependency of tensorflow itself
    for dep in [*project["dependencies"], *trainer_extra]:
        name = dep.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
        allowed |= provides.get(name, {name.replace("-", "_")})
    imported = _third_party_imports(REPO / "trainer" / "headstart" / "trainer")
    assert imported <= allowed, f"the trainer imports {sorted(imported - allowed)}, which its extra lacks"
    assert "sklearn" in _third_party_imports(REPO / "sdk" / "headstart" / "quickstart")  # the demo's, not its
