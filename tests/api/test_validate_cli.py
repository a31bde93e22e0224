"""`headstart validate` end to end: real files, the real CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "fixtures" / "invalid"


def _no_traceback(proc) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr


def test_every_example_is_valid(cli):
    """Every FineTuneJob manifest under examples/ (other objects there, such as the quickstart's storage in
    a cluster, are Kubernetes' own kinds)."""
    examples = sorted(str(p.relative_to(REPO)) for p in (REPO / "examples").rglob("*.yaml")
                      if "kind: FineTuneJob" in p.read_text())
    assert len(examples) >= 3
    proc = cli("validate", *examples)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all valid" in proc.stderr


def test_broken_manifests_give_one_precise_line_each(cli):
    proc = cli("validate", "-q", "tests/fixtures/invalid/")
    _no_traceback(proc)
    assert proc.returncode == 1
    expected = (REPO / "tests" / "fixtures" / "invalid.expected").read_text().splitlines()
    assert proc.stdout.splitlines() == expected
    files = sorted(INVALID.glob("*.yaml"))
    assert len(files) >= 20
    # every broken file is named at least once: none slips through as valid
    for f in files:
        assert any(line.startswith(f"tests/fixtures/invalid/{f.name}") for line in expected), f.name


def test_the_issue_example_line(cli, tmp_path):
    doc = (REPO / "examples" / "flowers-xception.yaml").read_text().replace(
        "learningRate: 0.01", "learningRate: 0")
    (tmp_path / "job.yaml").write_text(doc)
    proc = cli("validate", "-q", "job.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.strip() == "job.yaml[0]: spec.stages[1].optimizer.learningRate: must be greater than 0"


def test_warnings_are_marked_and_do_not_fail(cli, tmp_path):
    doc = (REPO / "examples" / "flowers-xception.yaml").read_text().replace(
        "learningRate: 0.01", "learningRate: 0.5")
    (tmp_path / "job.yaml").write_text(doc)
    proc = cli("validate", "job.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("job.yaml[0]: warning: spec.stages[1].optimizer.learningRate: ")
    strict = cli("validate", "--strict", "job.yaml", cwd=tmp_path)
    assert strict.returncode == 1


def test_multi_document_and_stdin(cli):
    text = (REPO / "examples" / "flowers-xception.yaml").read_text()
    second = text.replace("name: flowers-xception", "name: second").replace("epochs: 10", "epochs: -1")
    proc = cli("validate", "-q", "-", stdin=text + "\n---\n" + second)
    assert proc.returncode == 1
    assert proc.stdout.strip() == "<stdin>[1]: spec.stages[1].epochs: must be greater than 0"


def test_json_output(cli):
    proc = cli("validate", "-o", "json", "examples/flowers-xception.yaml",
               "tests/fixtures/invalid/zero-epochs.yaml")
    assert proc.returncode == 1
    records = json.loads(proc.stdout)
    assert [r["valid"] for r in records] == [True, False]
    assert records[1]["problems"][0] == {
        "path": "spec.stages[0].epochs", "severity": "error", "message": "must be greater than 0"}


def test_usage_errors_exit_2(cli, tmp_path):
    missing = cli("validate", "no/such/file.yaml")
    assert missing.returncode == 1
    assert missing.stdout.strip() == "no/such/file.yaml: no such file"
    bad_flag = cli("validate", "--output", "xml", "examples/flowers-xception.yaml")
    assert bad_flag.returncode == 2
    no_args = cli("validate")
    assert no_args.returncode == 2
    empty_dir = cli("validate", str(tmp_path))  # a directory without manifests
    assert empty_dir.returncode == 2
    for proc in (missing, bad_flag, no_args, empty_dir):
        _no_traceback(proc)


def test_validate_writes_nothing(cli, tmp_path):
    target = tmp_path / "job.yaml"
    target.write_text((INVALID / "zero-epochs.yaml").read_text())
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    proc = cli("validate", str(target), cwd=tmp_path)
    assert proc.returncode == 1
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_json_output_for_a_file_that_cannot_be_read(cli):
    proc = cli("validate", "-o", "json", "no/such/file.yaml", "tests/fixtures/invalid/malformed-yaml.yaml")
    assert proc.returncode == 1
    records = json.loads(proc.stdout)
    assert records[0] == {"file": "no/such/file.yaml", "valid": False,
                          "problems": [{"path": "", "severity": "error", "message": "no such file"}]}
    assert records[1]["problems"][0]["message"].startswith("line 5, column 2: malformed YAML: ")
