"""The in-pod status reporter, with a recording client and a hand-driven clock (the real API server
accepting and refusing its patches is in tests/cluster/test_operator_status.py)."""

from __future__ import annotations

import json
import urllib.error

from headstart.api import names
from headstart.trainer.kube_status import KubeStatusReporter, from_environment, termination_message
from headstart.trainer.reporting import ModelInfo, Progress, RunPlan, StagePlan, StageResult, TrainResult


class Client:
    def __init__(self, fail: bool = False, status: dict | None = None):
        self.patches: list[dict] = []
        self.attempts = 0
        self.fail = fail
        self.status = status or {}

    def patch_status(self, status: dict) -> None:
        self.attempts += 1
        if self.fail:
            raise urllib.error.URLError("connection refused")
        self.patches.append(json.loads(json.dumps(status)))

    def get_status(self) -> dict:
        if self.fail:
            raise urllib.error.URLError("connection refused")
        return self.status


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


STAGE = StagePlan("head", 0, 3, "none", True)


def progress(epoch: int, loss: float = 0.5) -> Progress:
    return Progress("head", 0, epoch, 3, {"loss": loss, "accuracy": 0.5, "val_loss": float("nan")})


def result(name: str = "head", index: int = 0) -> StageResult:
    return StageResult(name, index, 3, 3, 0.75, 1.234, feature_cache=True)


def test_epochs_are_rate_limited_and_stage_boundaries_always_sent(tmp_path):
    client, clock = Client(), Clock()
    rep = KubeStatusReporter(client, min_interval=5, clock=clock)
    rep.stage_started(STAGE, 0, 10)
    assert client.patches == [{"stage": "head", "stageIndex": 0, "epoch": 0, "epochs": 3}]
    clock.now += 1
    rep.epoch_ended(progress(1))  # too soon: kept
    assert len(client.patches) == 1
    clock.now += 5
    rep.epoch_ended(progress(2, loss=0.25))
    assert client.patches[-1] == {"stage": "head", "stageIndex": 0, "epoch": 2, "epochs": 3,
                                  "metrics": {"loss": 0.25, "accuracy": 0.5}}  # NaN is not JSON: dropped
    rep.stage_ended(result())
    assert client.patches[-1]["stages"] == [{"name": "head", "epochsCompleted": 3, "durationSeconds": 1.234,
                                             "stoppedEarly": False, "bestValAccuracy": 0.75}]
    assert not {"phase", "conditions", "message", "observedGeneration"} & {k for p in client.patches for k in p}


def test_an_unreachable_api_never_stops_training_and_backs_off(tmp_path, capsys):
    client, clock = Client(fail=True), Clock()
    rep = KubeStatusReporter(client, min_interval=1, clock=clock, termination_log=str(tmp_path / "term"))
    rep.stage_started(STAGE, 0, 10)
    for epoch in range(1, 4):
        clock.now += 1
        rep.epoch_ended(progress(epoch))
    assert client.attempts == 2  # four events, two tries: backing off (2 s, then 4 s)
    assert "training goes on" in capsys.readouterr().err
    client.fail = False
    clock.now += 10
    rep.stage_ended(result())
    sent = client.patches[-1]
    assert sent["epoch"] == 3 and sent["stages"][0]["name"] == "head"  # what was pending went out too


def test_completion_patches_the_model_and_writes_the_termination_message(tmp_path):
    client, term = Client(), tmp_path / "termination-log"
    term.write_text("")
    rep = KubeStatusReporter(client, termination_log=str(term), clock=Clock())
    model = ModelInfo("pvc://models/x", "f" * 64, ["keras"], ["cat", "dog"])
    rep.completed(TrainResult("x", "pvc://models/x", [result()], {"val_accuracy": 0.9}, model))
    assert client.patches[-1]["model"] == {"uri": "pvc://models/x", "sha256": "f" * 64, "formats": ["keras"],
                                           "classNames": ["cat", "dog"]}
    assert json.loads(term.read_text())["model"]["uri"] == "pvc://models/x"


def test_a_failure_goes_to_the_termination_message(tmp_path):
    term = tmp_path / "termination-log"
    KubeStatusReporter(Client(), termination_log=str(term), clock=Clock()).failed("dataset.imageFolder: no folder")
    assert json.loads(term.read_text()) == {"error": "dataset.imageFolder: no folder"}


def test_termination_message_fits_the_kubelets_limit():
    big = {"model": {"uri": "u", "sha256": "s", "formats": [], "classNames": [f"class-{i}" for i in range(2000)]},
           "metrics": {"val_accuracy": 0.5}}
    text = termination_message(big)
    assert len(text.encode()) <= 4096
    assert json.loads(text) == {"model": {"uri": "u", "sha256": "s", "formats": []}, "metrics": {"val_accuracy": 0.5}}


def test_resume_keeps_the_stages_a_previous_pod_finished():
    done = {"name": "head", "epochsCompleted": 3}
    client = Client(status={"stages": [done, {"name": "finetune", "epochsCompleted": 1}]})
    rep = KubeStatusReporter(client, clock=Clock())
    plan = RunPlan("x", "u", [STAGE], ["a", "b"], {"train": 4}, resume=(1, 1))
    rep.started(plan)
    rep.stage_ended(result("finetune", 1))
    assert [s["name"] for s in client.patches[-1]["stages"]] == ["head", "finetune"]
    assert client.patches[-1]["stages"][0] == done


def test_enabled_only_when_the_operator_names_the_job(tmp_path):
    assert from_environment({}) is None
    rep = from_environment({names.ENV_JOB_NAME: "x", names.ENV_JOB_NAMESPACE: "ns",
                            "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
                            names.ENV_TERMINATION_LOG: str(tmp_path / "none")})
    assert rep is not None and rep.termination_log is None  # no such file: not in a container
    assert rep.client.url == "https://10.0.0.1:443/apis/headstart.dev/v1alpha1/namespaces/ns/finetunejobs/x/status"


def test_the_trainer_entrypoint_reports_a_permanent_failure_in_its_termination_message(tmp_path):
    """`python -m headstart.trainer` as the operator starts it: env names the job, the termination log exists;
    no API server answers (training, or here failing, goes on regardless)."""
    import os
    import subprocess
    import sys

    import yaml

    from headstart.trainer.errors import EXIT_DATASET

    job = {"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "nodata"},
           "spec": {"baseModel": {"application": "MobileNetV2", "weights": "none"},
                    "dataset": {"imageFolder": {"uri": str(tmp_path / "missing")}},
                    "stages": [{"name": "head", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}}],
                    "output": {"uri": str(tmp_path / "out")}}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    term = tmp_path / "termination-log"
    term.write_text("")
    env = {**os.environ, names.ENV_JOB_NAME: "nodata", names.ENV_JOB_NAMESPACE: "ns",
           names.ENV_TERMINATION_LOG: str(term), "KUBERNETES_SERVICE_HOST": "127.0.0.1",
           "KUBERNETES_SERVICE_PORT": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "headstart.trainer", "--job", str(tmp_path / "job.yaml")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == EXIT_DATASET, done.stderr
    assert json.loads(term.read_text())["error"].startswith("dataset.imageFolder: no folder at")
    assert "Traceback" not in done.stderr


def test_status_metrics_are_short_enough_to_read_in_kubectl_get():
    from headstart.trainer.kube_status import _finite

    assert _finite({"val_accuracy": 0.8587360382080078, "learning_rate": 9.999999747378752e-05,
                    "loss": float("nan"), "epochs": 3}) == {"val_accuracy": 0.8587, "learning_rate": 0.0001,
                                                             "epochs": 3.0}
