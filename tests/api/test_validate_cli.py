"""`headstart validate` end to end: real files, the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "fixtures" / "invalid"


def _no_traceback(proc) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr


LOCAL_EXAMPLES = sorted(str(p.relative_to(REPO)) for p in (REPO / "examples" / "quickstart").glob("*.yaml"))


def test_every_example_is_valid(cli):
    """Every FineTuneJob manifest under examples/ (other objects there, such as the quickstart's storage in
    a cluster, are Kubernetes' own kinds); the offline quickstart's, which write to local paths, for
    `headstart run` (--local), and a cluster refuses them."""
    examples = sorted(str(p.relative_to(REPO)) for p in (REPO / "examples").rglob("*.yaml")
                      if "kind: FineTuneJob" in p.read_text() and str(p.relative_to(REPO)) not in LOCAL_EXAMPLES)
    assert len(examples) >= 3 and len(LOCAL_EXAMPLES) == 3
    proc = cli("validate", *examples)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all valid" in proc.stderr
    local = cli("validate", "--local", *LOCAL_EXAMPLES)
    assert local.returncode == 0, local.stdout + local.stderr
    in_a_cluster = cli("validate", "-q", LOCAL_EXAMPLES[0])
    assert in_a_cluster.returncode == 1
    assert "spec.output.uri: a local output would vanish with the training pod" in in_a_cluster.stdout


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


def test_read_as_the_api_server_reads_it(cli, tmp_path):
    """No coercion where the CRD has a type; a whole float is an integer (JSON has one number type); a date-like
    label stays the string kubectl sends; a key given twice, or bytes that are not UTF-8, are refused in one line
    naming where."""
    text = (REPO / "examples" / "flowers-xception.yaml").read_text()
    cases = {
        "bool.yaml": (text.replace("epochs: 10", "epochs: true"),
                      ["bool.yaml[0]: spec.stages[1].epochs: must be an integer (got True)"]),
        "string.yaml": (text.replace("learningRate: 0.01", "learningRate: '0.01'"),
                        ["string.yaml[0]: spec.stages[1].optimizer.learningRate: must be a number (got '0.01')"]),
        "yes.yaml": (text.replace("  resources:", "  runtime: {xla: 'yes'}\n  resources:"),
                     ["yes.yaml[0]: spec.runtime.xla: must be true or false (got 'yes')"]),
        "half.yaml": (text.replace("epochs: 10", "epochs: 10.5"),
                      ["half.yaml[0]: spec.stages[1].epochs: must be an integer (got 10.5)"]),
        "whole.yaml": (text.replace("epochs: 10", "epochs: 10.0"), []),
        "dated.yaml": (text.replace("  name: flowers-xception",
                                    "  name: flowers-xception\n  labels: {since: 2026-11-28}"), []),
        "twice.yaml": (text + "---\n" + text.replace("batchSize: 32", "batchSize: 32\n    batchSize: 8"),
                       ["twice.yaml: line 59, column 5: duplicate key 'batchSize' (first at line 58)"]),
    }
    for name, (body, expected) in cases.items():
        (tmp_path / name).write_text(body)
        proc = cli("validate", "-q", name, cwd=tmp_path)
        assert proc.stdout.splitlines() == expected, (name, proc.stdout, proc.stderr)
        assert proc.returncode == (1 if expected else 0), name
    from headstart.api import load_job

    assert load_job(str(tmp_path / "dated.yaml")).metadata.labels == {"since": "2026-11-28"}
    assert load_job(str(tmp_path / "whole.yaml")).spec.stages[1].epochs == 10


def test_bytes_that_are_not_utf8_are_one_line_from_a_file_or_stdin(cli, tmp_path):
    body = (REPO / "examples" / "flowers-xception.yaml").read_bytes().replace(b"name: flowers-xception",
                                                                              b"name: flowers-xception # caf\xe9")
    (tmp_path / "latin1.yaml").write_bytes(body)
    proc = cli("validate", "-q", "latin1.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == "latin1.yaml: not UTF-8 text: byte 0xe9 at line 7, column 31 (save the file as UTF-8)\n"
    piped = subprocess.run([sys.executable, "-c", "from headstart.sdk.cli import main; main()", "validate", "-q",
                            "-"], input=body, capture_output=True, cwd=REPO, timeout=120)
    assert piped.returncode == 1 and piped.stdout.decode().startswith("<stdin>: not UTF-8 text: byte 0xe9 at line 7")
    _no_traceback(proc)


def test_a_gitops_folder_skips_other_kinds_with_a_note_and_recursive_walks_it(cli, tmp_path):
    proc = cli("validate", "examples/quickstart/cluster/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "examples/quickstart/cluster/storage.yaml[1]: skipped: v1 PersistentVolumeClaim is not a FineTuneJob" \
        in proc.stderr
    assert proc.stderr.strip().endswith("4 file(s), 3 FineTuneJob(s): all valid, 2 skipped")
    flat = cli("validate", "examples/")
    walked = cli("validate", "--local", "-R", "examples/")  # the offline quickstart's jobs write to local paths
    assert flat.returncode == walked.returncode == 0, walked.stderr
    assert "quickstart" not in flat.stderr and "examples/quickstart/cluster/storage.yaml[0]: skipped" in walked.stderr
    assert "examples/serving/inferenceservice.yaml[0]: skipped: serving.kserve.io/v1beta1 InferenceService is not " \
        "a FineTuneJob" in walked.stderr
    assert walked.stderr.strip().endswith("13 file(s), 11 FineTuneJob(s): all valid, 3 skipped")
    records = json.loads(cli("validate", "-o", "json", "examples/quickstart/cluster/storage.yaml",
                             "examples/flowers-xception.yaml").stdout)
    assert records[0] == {"file": "examples/quickstart/cluster/storage.yaml", "index": 0,
                          "skipped": "v1 PersistentVolume", "valid": True, "problems": []}
    # a kind meant as ours is checked, not skipped; a folder of other kinds only has nothing to validate
    (tmp_path / "typo.yaml").write_text("apiVersion: v1\nkind: FinetuneJob\nmetadata: {name: x}\nspec: {}\n")
    typo = cli("validate", "-q", "typo.yaml", cwd=tmp_path)
    assert typo.returncode == 1 and typo.stdout.startswith("typo.yaml[0]: apiVersion: must be headstart.dev/v1alpha1")
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "pvc.yaml").write_text("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: m}\n")
    only = cli("validate", "only/", cwd=tmp_path)
    assert only.returncode == 2 and only.stderr.strip().endswith("headstart validate: no FineTuneJob in only/")
