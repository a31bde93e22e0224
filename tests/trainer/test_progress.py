"""The trainer's progress: snapshots from its events, sent from a background thread that never stops training,
the termination message; a real HTTPS server takes the client's posts (the operator's own endpoint, with its
TokenReviews, is in tests/cluster/test_progress_endpoint.py)."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import urllib.error

import pytest
from controlplane.waiting import wait_for

from headstart.api import names
from headstart.api.exitcodes import ExitCode
from headstart.api.progress import TRAINER_FIELDS, ProgressSnapshot
from headstart.operator import certs
from headstart.trainer.progress import (
    PodReporter,
    ProgressClient,
    Sender,
    SnapshotReporter,
    finite,
    from_environment,
    termination_message,
)
from headstart.trainer.reporting import ModelInfo, Progress, RunPlan, StagePlan, StageResult, TrainResult

STAGE = StagePlan("head", 0, 3, "none", True)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self, fail: bool = False):
        self.posted: list[ProgressSnapshot] = []
        self.attempts = 0
        self.fail = fail

    def post(self, snapshot: ProgressSnapshot) -> dict:
        self.attempts += 1
        if self.fail:
            raise urllib.error.URLError("connection refused")
        self.posted.append(snapshot)
        return {"accepted": True}


def progress(epoch: int, loss: float = 0.5) -> Progress:
    return Progress("head", 0, epoch, 3, {"loss": loss, "accuracy": 0.5, "val_loss": float("nan")})


def result(name: str = "head", index: int = 0) -> StageResult:
    return StageResult(name, index, 3, 3, 0.75, 1.234, feature_cache=True)


def test_snapshots_follow_the_trainers_events():
    taken: list[tuple[ProgressSnapshot, bool]] = []
    rep = SnapshotReporter(lambda snapshot, urgent: taken.append((snapshot, urgent)))
    rep.stage_started(STAGE, 0, 10)
    rep.epoch_ended(progress(1, loss=0.8587360382080078))
    rep.stage_ended(result())
    model = ModelInfo("pvc://models/x", "f" * 64, ["keras"], ["cat", "dog"], ["confusion.png", "curves.png"])
    rep.completed(TrainResult("x", "pvc://models/x", [result()], {"val_accuracy": 0.9}, model))
    assert [s.seq for s, _ in taken] == [1, 2, 3, 4]
    assert [urgent for _, urgent in taken] == [True, False, True, True]  # epochs may wait, boundaries may not
    first = taken[0][0].status_fields()
    assert first == {"stage": "head", "stageIndex": 0, "epoch": 0, "epochs": 3, "metrics": {}, "stages": []}
    assert taken[1][0].status_fields()["metrics"] == {"loss": 0.8587, "accuracy": 0.5}  # NaN is not JSON: dropped
    assert taken[2][0].status_fields()["stages"] == [{"name": "head", "epochsCompleted": 3, "durationSeconds": 1.234,
                                                      "stoppedEarly": False, "bestValAccuracy": 0.75}]
    last = taken[3][0].status_fields()
    assert last["model"] == {"uri": "pvc://models/x", "sha256": "f" * 64, "formats": ["keras"],
                             "classNames": ["cat", "dog"], "pictures": ["confusion.png", "curves.png"]}
    assert last["metrics"] == {"loss": 0.8587, "accuracy": 0.5, "val_accuracy": 0.9}
    assert set(last) <= set(TRAINER_FIELDS)  # never the operator's fields


def test_a_snapshots_patch_removes_metrics_it_no_longer_has_and_repeats_nothing():
    snap = ProgressSnapshot(seq=2, stage="tune", epoch=1, epochs=2, metrics={"loss": 0.3})
    old = {"stage": "tune", "epochs": 2, "metrics": {"loss": 0.4, "val_loss": 0.5}, "phase": "Running"}
    assert snap.status_patch(old) == {"epoch": 1, "metrics": {"val_loss": None, "loss": 0.3}, "stages": []}
    assert snap.status_patch({**old, "epoch": 1, "metrics": {"loss": 0.3}, "stages": []}) == {}


def test_resume_keeps_the_stages_an_earlier_pod_finished():
    taken: list[ProgressSnapshot] = []
    rep = SnapshotReporter(lambda snapshot, _urgent: taken.append(snapshot))
    rep.started(RunPlan("x", "u", [STAGE], ["a", "b"], {"train": 4}, resume=(1, 1), completed=(result(),)))
    rep.stage_ended(result("finetune", 1))
    assert [s.name for s in taken[-1].stages] == ["head", "finetune"]
    assert taken[-1].stages[0].epochs_completed == 3


def test_the_sender_holds_epochs_back_but_never_a_stage_boundary():
    clock = Clock()
    sender = Sender(Recorder(), min_interval=5, clock=clock)
    sender.latest, sender.urgent = ProgressSnapshot(seq=1), True
    assert sender._due_in() == 0 and sender.send(sender.latest)
    sender.latest, sender.urgent = ProgressSnapshot(seq=2), False
    clock.now += 1
    assert sender._due_in() == pytest.approx(4)  # an epoch, 1 s after the last send: waits
    sender.urgent = True
    assert sender._due_in() == 0  # a stage boundary goes at once
    sender.send(sender.latest)
    assert sender._due_in() is None  # nothing newer to send


def test_an_unreachable_operator_never_stops_training_and_backs_off(capsys):
    client, clock = Recorder(fail=True), Clock()
    sender = Sender(client, min_interval=2, clock=clock)
    snap = ProgressSnapshot(seq=1, stage="head")
    waits = []
    for _ in range(8):
        assert sender.send(snap) is False
        waits.append(sender.retry_at - clock.now)
    assert waits[:3] == [4, 8, 16] and max(waits) == 60  # doubling, bounded
    assert capsys.readouterr().err.count("training goes on") == 1  # said once
    client.fail = False
    assert sender.send(ProgressSnapshot(seq=5, stage="head", epoch=3)) and client.posted[-1].epoch == 3
    assert sender.failures == 0


def test_closing_sends_the_last_snapshot_from_the_thread():
    client = Recorder()
    sender = Sender(client, min_interval=3600)
    sender.submit(ProgressSnapshot(seq=1, epoch=0), urgent=True)
    wait_for(lambda: client.posted, "the first snapshot posted", 10)
    for seq in range(2, 5):
        sender.submit(ProgressSnapshot(seq=seq, epoch=seq), urgent=False)  # held back: an hour's interval
    assert len(client.posted) == 1
    sender.close(timeout=10)
    assert [s.seq for s in client.posted] == [1, 4]  # the latest held-back snapshot went out at the end
    assert not sender.thread.is_alive()


def test_completion_and_failure_go_to_the_termination_message(tmp_path):
    term = tmp_path / "termination-log"
    rep = PodReporter(Sender(Recorder(), min_interval=0), termination_log=str(term))
    model = ModelInfo("pvc://models/x", "f" * 64, ["keras"], ["cat", "dog"], ["confusion.png", "curves.png"])
    rep.completed(TrainResult("x", "pvc://models/x", [result()], {"val_accuracy": 0.9}, model))
    rep.close()
    written = json.loads(term.read_text())
    assert written["model"]["uri"] == "pvc://models/x" and written["metrics"] == {"val_accuracy": 0.9}
    assert written["stages"] == [{"name": "head", "epochsCompleted": 3, "bestValAccuracy": 0.75,
                                  "durationSeconds": 1.234, "stoppedEarly": False}]
    PodReporter(Sender(Recorder()), termination_log=str(term)).failed("dataset.imageFolder: no folder")
    assert json.loads(term.read_text()) == {"error": "dataset.imageFolder: no folder"}


def test_termination_message_fits_the_kubelets_limit():
    big = {"model": {"uri": "u", "sha256": "s", "formats": [], "classNames": [f"class-{i}" for i in range(2000)]},
           "metrics": {"val_accuracy": 0.5}}
    text = termination_message(big)
    assert len(text.encode()) <= 4096
    assert json.loads(text) == {"model": {"uri": "u", "sha256": "s", "formats": []}, "metrics": {"val_accuracy": 0.5}}
    with_stages = {**big, "stages": [{"name": f"stage-{i}", "epochsCompleted": 1} for i in range(20)]}
    kept = json.loads(termination_message(with_stages))
    assert len(kept["stages"]) == 20 and "classNames" not in kept["model"]  # stages outrank class names


def test_status_metrics_are_short_enough_to_read_in_kubectl_get():
    assert finite({"val_accuracy": 0.8587360382080078, "learning_rate": 9.999999747378752e-05,
                   "loss": float("nan"), "epochs": 3}) == {"val_accuracy": 0.8587, "learning_rate": 0.0001,
                                                            "epochs": 3.0}


def test_on_only_when_the_operator_configures_it(tmp_path, capsys):
    bundle = certs.make_bundle(["127.0.0.1"])
    token = tmp_path / "token"
    token.write_text("t")
    assert from_environment({}) is None
    env = {names.ENV_PROGRESS_URL: "https://127.0.0.1:9/x", names.ENV_PROGRESS_TOKEN: str(token),
           names.ENV_PROGRESS_CA: bundle.ca, names.ENV_TERMINATION_LOG: str(tmp_path / "none")}
    rep = from_environment(env)
    assert rep is not None and rep.termination_log is None  # no such file: not in a container
    assert rep.sender.client.url == "https://127.0.0.1:9/x"
    assert from_environment({**env, names.ENV_PROGRESS_CA: "-----BEGIN CERTIFICATE-----\nnot\n"}) is None
    assert "training goes on" in capsys.readouterr().err


class _Endpoint(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, self.headers["Authorization"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"accepted": true}')

    def log_message(self, *args):
        pass


def test_the_client_posts_over_tls_with_the_current_token(tmp_path):
    bundle = certs.make_bundle(["127.0.0.1"])
    certs.write_files(bundle, tmp_path / "tls")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls" / "tls.crt", tmp_path / "tls" / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        token = tmp_path / "token"
        url = f"https://127.0.0.1:{server.server_address[1]}/v1/namespaces/ns/finetunejobs/j/progress"
        client = ProgressClient(url, str(token), bundle.ca)
        token.write_text("first\n")
        assert client.post(ProgressSnapshot(seq=1, stage="head")) == {"accepted": True}
        token.write_text("rotated")  # the kubelet rotates the projected token: read at every request
        client.post(ProgressSnapshot(seq=2, stage="head", epoch=1))
        assert [(p, a) for p, a, _ in _Endpoint.seen[-2:]] == [
            ("/v1/namespaces/ns/finetunejobs/j/progress", "Bearer first"),
            ("/v1/namespaces/ns/finetunejobs/j/progress", "Bearer rotated")]
        assert _Endpoint.seen[-1][2]["epoch"] == 1 and _Endpoint.seen[-1][2]["seq"] == 2
        stranger = ProgressClient(url, str(token), certs.make_bundle(["127.0.0.1"]).ca)  # another CA
        with pytest.raises(urllib.error.URLError):
            stranger.post(ProgressSnapshot(seq=3))
    finally:
        server.shutdown()


def test_the_trainer_entrypoint_reports_a_permanent_failure_in_its_termination_message(tmp_path):
    """`python -m headstart.trainer` as the operator starts it: the progress endpoint configured but not
    answering (failing, as training, goes on regardless), the termination log there."""
    import os
    import subprocess
    import sys

    import yaml

    job = {"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "nodata"},
           "spec": {"baseModel": {"application": "MobileNetV2", "weights": "none"},
                    "dataset": {"imageFolder": {"uri": str(tmp_path / "missing")}},
                    "stages": [{"name": "head", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}}],
                    "output": {"uri": str(tmp_path / "out")}}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    term, token = tmp_path / "termination-log", tmp_path / "token"
    term.write_text("")
    token.write_text("t")
    env = {**os.environ, names.ENV_PROGRESS_URL: "https://127.0.0.1:1/v1/namespaces/ns/finetunejobs/nodata/progress",
           names.ENV_PROGRESS_TOKEN: str(token), names.ENV_PROGRESS_CA: certs.make_bundle(["127.0.0.1"]).ca,
           names.ENV_TERMINATION_LOG: str(term), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "headstart.trainer", "--job", str(tmp_path / "job.yaml")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == ExitCode.DATASET, done.stderr
    assert json.loads(term.read_text())["error"].startswith("dataset.imageFolder: no folder at")
    assert "Traceback" not in done.stderr
