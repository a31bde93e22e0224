"""The offline quickstart, reduced: the same data preparation, manifests (examples/quickstart/) and job
chain through the real trainer as ``python -m headstart.quickstart``, on less data."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from headstart import quickstart as qs

REPO = Path(__file__).resolve().parents[2]


def test_png_writer_round_trips_through_tensorflow():
    import numpy as np
    import tensorflow as tf

    image = np.random.default_rng(0).integers(0, 256, (qs.CANVAS, qs.CANVAS), dtype="uint8")
    decoded = tf.io.decode_image(qs.png(image), channels=3).numpy()
    assert decoded.shape == (qs.CANVAS, qs.CANVAS, 3)
    assert (decoded == image[..., None]).all()


def test_source_and_target_come_from_different_writers_samples(tmp_path):
    sizes = qs.Sizes.tiny()
    counts = qs.prepare_data(tmp_path, sizes)
    source = sorted(p.name for p in (tmp_path / "data" / "source").iterdir())
    target = {p.name: len(list(p.iterdir())) for p in (tmp_path / "data" / "target").iterdir()}
    assert source == [str(d) for d in range(10)]
    assert target == {str(d): sizes.target_per_class for d in range(10)}
    assert counts["target"] == 10 * sizes.target_per_class
    # half of the 1797 samples (once per copy) for the source, the other half feeds the target
    assert counts["source"] == sizes.source_copies * (1797 // 2)


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    from rich.console import Console

    workdir = tmp_path_factory.mktemp("quickstart")
    out = io.StringIO()
    summary = qs.run_quickstart(workdir, qs.Sizes.tiny(), console=Console(file=out, width=120))
    return workdir, summary, out.getvalue()


def test_reduced_quickstart_runs_the_job_chain(reduced):
    workdir, summary, log = reduced
    sizes = summary.sizes
    for name in qs.JOBS:
        assert (workdir / "runs" / name / "manifest.json").is_file(), name
    transfer, scratch = summary.outcomes[qs.TRANSFER], summary.outcomes[qs.SCRATCH]
    assert transfer.stages == ["head", "finetune"] and scratch.stages == ["train"]
    assert transfer.train_images == scratch.train_images == 10 * sizes.train_per_class
    assert transfer.test_images == scratch.test_images == 10 * (sizes.target_per_class - sizes.train_per_class)
    card = (workdir / "runs" / qs.TRANSFER / "README.md").read_text()
    assert qs.SOURCE in card  # the base came from the source job's output
    assert "on cached features" in log  # the frozen head stage used the feature cache


def test_reduced_quickstart_transfer_beats_scratch(reduced):
    _, summary, _ = reduced
    transfer, scratch = summary.outcomes[qs.TRANSFER], summary.outcomes[qs.SCRATCH]
    print(f"reduced quickstart: transfer {transfer.test_accuracy:.3f}, scratch {scratch.test_accuracy:.3f}")
    assert transfer.test_accuracy >= scratch.test_accuracy + 0.15, (transfer, scratch)


def test_summary_table_shows_both_accuracies_and_the_gain(reduced):
    from rich.console import Console

    _, summary, _ = reduced
    out = io.StringIO()
    qs.print_summary(summary, Console(file=out, width=160))
    text = out.getvalue()
    assert f"{summary.outcomes[qs.TRANSFER].test_accuracy:.1%}" in text
    assert f"{summary.outcomes[qs.SCRATCH].test_accuracy:.1%}" in text
    assert f"{summary.gain:+.1%}" in text


def _module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / r) for r in ("sdk", "trainer", "operator"))}
    return subprocess.run([sys.executable, "-m", "headstart.quickstart", *args], capture_output=True,
                          text=True, cwd=str(cwd), env=env, timeout=120)


def test_missing_manifests_is_one_line_and_exit_1(tmp_path):
    proc = _module("--workdir", str(tmp_path / "w"), "--manifests", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no quickstart manifests")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_invalid_manifest_is_one_line_and_exit_1(tmp_path):
    for name in qs.JOBS:
        text = (REPO / "examples" / "quickstart" / f"{name}.yaml").read_text()
        if name == qs.TRANSFER:
            text = text.replace("type: Adam", "type: Adamm", 1)
        (tmp_path / f"{name}.yaml").write_text(text)
    proc = _module("--workdir", str(tmp_path / "w"), "--manifests", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {tmp_path / (qs.TRANSFER + '.yaml')}: ")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_compare_reads_the_same_outcomes_from_the_runs(reduced):
    workdir, summary, _ = reduced
    again = qs.summary_from_runs(workdir / "runs", summary.sizes)
    for name in qs.JOBS:
        assert again.outcomes[name].test_accuracy == pytest.approx(summary.outcomes[name].test_accuracy, nan_ok=True)
        assert again.outcomes[name].train_images == summary.outcomes[name].train_images
    assert again.gain == pytest.approx(summary.gain)


def test_compare_without_runs_is_one_line_and_exit_1(tmp_path):
    proc = _module("--compare", str(tmp_path / "nothing"), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "no complete run of digits-source" in proc.stderr
    assert "Traceback" not in proc.stderr
