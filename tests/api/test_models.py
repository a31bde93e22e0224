"""The pydantic models: defaults on reading, never written back; parsed helpers; URI mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from headstart.api import FineTuneJob, TrainBase, load_job, warnings_for
from headstart.api.uris import UriError, check_uri, to_fsspec_url

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "flowers-xception.yaml"


def test_seed_manifest_round_trips_without_defaults_written_back():
    raw = yaml.safe_load(SEED.read_text())
    job = FineTuneJob.model_validate(raw)
    assert job.spec.to_wire() == raw["spec"]  # nothing added: GitOps sees no drift
    # ...while the defaults are there when reading
    assert job.spec.seed == 42
    assert job.spec.output.formats == ["keras", "savedmodel"]
    assert job.spec.output.overwrite is False
    assert job.spec.stages[0].early_stopping is None
    assert job.spec.base_model.resolved_image_size() == (299, 299)


def test_python_names_and_wire_names():
    job = load_job(str(SEED))
    stage = job.spec.stages[1]
    assert stage.optimizer.learning_rate == 0.01 and stage.train_base == "all"
    assert job.spec.dataset.batch_size == 32
    assert job.spec.dataset.tfds.name == "tf_flowers"
    assert job.spec.to_wire(exclude_unset=False)["stages"][1]["optimizer"]["learningRate"] == 0.01


@pytest.mark.parametrize("text, parsed", [
    ("none", TrainBase("none")),
    ("all", TrainBase("all")),
    ("top:30", TrainBase("top", top=30)),
    ("from:block13_sepconv1", TrainBase("from", from_layer="block13_sepconv1")),
])
def test_train_base_grammar(text, parsed):
    assert TrainBase.parse(text) == parsed


def test_warning_for_fine_tune_rate_not_lower():
    raw = yaml.safe_load(SEED.read_text())
    raw["spec"]["stages"][1]["optimizer"]["learningRate"] = 0.2
    problems = warnings_for(FineTuneJob.model_validate(raw))
    assert [p.path for p in problems] == ["spec.stages[1].optimizer.learningRate"]
    assert problems[0].severity == "warning"


def test_uri_rules_and_pvc_mapping(monkeypatch):
    monkeypatch.setenv("HEADSTART_PVC_ROOT", "/mnt/pvcs")
    assert to_fsspec_url("pvc://models/flowers/v1") == "/mnt/pvcs/models/flowers/v1"
    assert to_fsspec_url("file:///data/x") == "/data/x"
    assert to_fsspec_url("s3://bucket/key") == "s3://bucket/key"
    assert to_fsspec_url("runs/out") == "runs/out"
    for bad in ("", "ftp://h/x", "pvc://claim", "pvc://claim/../other", "s3:///nobucket", "file://host/x"):
        with pytest.raises(UriError):
            check_uri(bad, writable=True)
    with pytest.raises(UriError):
        check_uri("https://example.invalid/out", writable=True)
    assert check_uri("https://example.invalid/w.h5") == "https://example.invalid/w.h5"


def test_applications_table_matches_keras():
    import keras

    from headstart.api.applications import APPLICATIONS, default_image_size

    for name in APPLICATIONS:
        assert hasattr(keras.applications, name), name
    assert default_image_size("Xception") == (299, 299)
    assert default_image_size("EfficientNetB3") == (300, 300)
