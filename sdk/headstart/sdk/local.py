"""The local backend: the same calls as the cluster's, run on this machine by the trainer `headstart run` uses.

A job is a record folder ``ROOT/.jobs/NAME/`` (job.yaml, status.json, events.jsonl, log, pid) and its model
goes to ``ROOT/NAME/`` (``ROOT`` defaults to ./headstart-runs, as for `headstart run`; a fromJob base
resolves to ``ROOT/<that job>/``). ``submit`` starts ``python -m headstart.sdk.local_run`` in the
background; the status it writes is the FineTuneJobStatus a cluster would show, with the same reasons
and conditions (``local_run.apply_verdict``). Suspending stops the process (the trainer checkpoints every
epoch); resuming starts it again and it resumes from the checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from headstart.api import FineTuneJob
from headstart.api.reasons import TERMINAL_PHASES, Phase, Reason
from headstart.api.verdict import Verdict, now

from .errors import AlreadyExists, JobFailed, NotFound, Timeout
from .local_run import TRAINING_JOB, add_event, apply_verdict, read_status
from .results import JobEvent, StoredJob, job_from

POLL_SECONDS = 0.2
GONE = "the local trainer process ended without a result"


class LocalBackend:
    """Jobs trained on this machine, in the background (see headstart.sdk.backend.Backend)."""

    target = "local"  # a local output path is fine here

    def __init__(self, root: str | os.PathLike = "headstart-runs"):
        self.root = Path(root)
        self.namespace = "local"

    def _record(self, name: str) -> Path:
        return self.root / ".jobs" / name

    def _existing(self, name: str) -> Path:
        record = self._record(name)
        if not (record / "job.yaml").is_file():
            raise NotFound(f"no local job {name} under {self.root}")
        return record

    # -- jobs ------------------------------------------------------------------------------------------

    def submit(self, job: FineTuneJob) -> str:
        """Record the job under the root and start the local trainer for it in the background.

        Args:
            job: The (checked) job; its model goes to ``ROOT/NAME/``.

        Returns:
            The job's name.

        Raises:
            AlreadyExists: A local job of that name already exists under the root.
        """
        record = self._record(job.name)
        if (record / "job.yaml").exists():
            raise AlreadyExists(f"local job {job.name} already exists under {self.root} (delete it first)")
        record.mkdir(parents=True, exist_ok=True)
        (record / "job.yaml").write_text(yaml.safe_dump(job.to_manifest(), sort_keys=False))
        (record / "output").write_text(str((self.root / job.name).resolve()))
        apply_verdict(record, Verdict(Phase.PENDING, Reason.CREATING, "starting the local trainer"))
        self._start(record)
        return job.name

    def _start(self, record: Path) -> None:
        with open(record / "log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "headstart.sdk.local_run", str(record)],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        (record / "pid").write_text(str(process.pid))
        add_event(record, "Normal", "Created", f"started the local trainer (process {process.pid})")

    def _alive(self, record: Path) -> bool:
        try:
            pid = int((record / "pid").read_text())
        except (OSError, ValueError):
            return False
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)  # our own child: reap it
            if waited == pid:
                return False
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _status(self, record: Path) -> dict:
        status = read_status(record)
        if status.get("phase") in ("Pending", "Running") and not self._alive(record):
            status = apply_verdict(record, Verdict(Phase.FAILED, Reason.TRAINER_FAILED, GONE, created=True,
                                                   training_job=TRAINING_JOB, completion_time=now()))
        return status

    def get(self, name: str) -> StoredJob:
        """The local job ``name`` with its status; an InvalidStoredJob when its stored spec no longer reads.

        Raises:
            NotFound: there is no local job of that name under the root.
        """
        record = self._existing(name)
        doc = yaml.safe_load((record / "job.yaml").read_text())
        doc["status"] = self._status(record) or None
        return job_from(doc)

    def list(self, selector: str | None = None, all_namespaces: bool = False) -> list[FineTuneJob]:
        """The local jobs under the root, in the order of their names.

        Args:
            selector: Comma-separated ``key=value`` labels the jobs must all have (None: all jobs).
            all_namespaces: Ignored: local jobs have the one namespace ``local``.

        Returns:
            The jobs, each with its status.
        """
        wanted = dict(part.split("=", 1) for part in selector.split(",")) if selector else {}
        jobs = []
        for record in sorted((self.root / ".jobs").glob("*/job.yaml")):
            job = self.get(record.parent.name)
            if all(job.metadata.labels.get(k) == v for k, v in wanted.items()):
                jobs.append(job)
        return jobs

    def delete(self, name: str, wait: float = 0) -> None:  # gone at once: nothing to wait for
        """Stop the job's trainer process, if it runs, and remove its record (its model stays).

        Args:
            name: The local job's name.
            wait: Ignored: the job is gone when this returns.

        Raises:
            NotFound: There is no local job of that name.
        """
        record = self._existing(name)
        self._stop(record)
        shutil.rmtree(record)

    def _stop(self, record: Path) -> None:
        if not self._alive(record):
            return
        pid = int((record / "pid").read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while self._alive(record) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if self._alive(record):
            os.killpg(pid, signal.SIGKILL)

    def set_suspend(self, name: str, suspend: bool) -> None:
        """Suspend the job (stop its process) or resume it (start it again, from its checkpoint).

        A job that has ended is left as it is, and so is a resume of a job that is not suspended.

        Args:
            name: The local job's name.
            suspend: True to suspend, False to resume.

        Raises:
            NotFound: There is no local job of that name.
        """
        record = self._existing(name)
        phase = read_status(record).get("phase")
        if phase in TERMINAL_PHASES:
            return
        if suspend:
            self._stop(record)
            apply_verdict(record, Verdict(Phase.SUSPENDED, Reason.SUSPENDED, "suspended by `headstart suspend`; "
                                          "resume continues from the last checkpoint", created=True,
                                          training_job=TRAINING_JOB))
        elif phase == Phase.SUSPENDED.value:
            apply_verdict(record, Verdict(Phase.PENDING, Reason.CREATING, "starting the local trainer again, "
                                          "from its checkpoint", created=True, training_job=TRAINING_JOB))
            self._start(record)

    # -- waiting, events, logs, models ------------------------------------------------------------------

    def wait(self, name: str, phases: set[str], timeout: float,
             callback: Callable[[FineTuneJob], None] | None = None) -> FineTuneJob:
        """Poll the job until its phase is one of ``phases``.

        Args:
            name: The local job's name.
            phases: The phases to wait for.
            timeout: The most seconds to wait.
            callback: Called with the job whenever its status differs from the previous poll's.

        Returns:
            The job, in one of ``phases``.

        Raises:
            NotFound: There is no local job of that name.
            JobFailed: The job failed and Failed is not in ``phases``.
            Timeout: ``timeout`` seconds passed first.
        """
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            job = self.get(name)
            phase = job.status.phase.value if job.status and job.status.phase else None
            state = job.status.model_dump_json() if job.status else None
            if callback is not None and state != seen:
                callback(job)
            seen = state
            if phase in phases:
                return job
            if phase == "Failed":
                raise JobFailed(name, job.status.reason, job.status.message)
            if time.monotonic() >= deadline:
                raise Timeout(f"local job {name} is still {phase} after {timeout:g}s")
            time.sleep(POLL_SECONDS)

    def events(self, name: str) -> list[JobEvent]:
        """The job's events, as recorded in its events.jsonl, oldest first.

        Args:
            name: The local job's name.

        Returns:
            The events (none when nothing is recorded yet).

        Raises:
            NotFound: There is no local job of that name.
        """
        record = self._existing(name)
        path = record / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [JobEvent(object=f"FineTuneJob/{name}", **json.loads(line)) for line in lines if line.strip()]

    def logs(self, name: str, follow: bool = False, timeout: float | None = None) -> Iterator[str]:
        """The lines of the job's log.

        Args:
            name: The local job's name.
            follow: Yield the lines as they are written, until the trainer process ends.
            timeout: With ``follow``, the most seconds to follow (None: no limit).

        Returns:
            An iterator over the lines.

        Raises:
            NotFound: There is no local job of that name.
            Timeout: While following, ``timeout`` seconds passed and the process still writes.
        """
        record = self._existing(name)
        return self._follow(record, timeout) if follow else iter((record / "log").read_text().splitlines())

    def _follow(self, record: Path, timeout: float | None) -> Iterator[str]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with open(record / "log", encoding="utf-8", errors="replace") as log:
            partial = ""
            while True:
                chunk = log.read()
                if chunk:
                    *lines, partial = (partial + chunk).split("\n")
                    yield from lines
                    continue
                if not self._alive(record):
                    if partial:
                        yield partial
                    return
                if deadline is not None and time.monotonic() > deadline:
                    raise Timeout("the local job is still writing its log")
                time.sleep(POLL_SECONDS)

    def fetch(self, name: str, dest: Any, overwrite: bool = False) -> Path:
        """The job's model, verified, into ``dest``.

        Args:
            name: The local job's name.
            dest: The folder to put the model in.
            overwrite: Whether a folder that is not empty may be replaced.

        Returns:
            The folder the model is in.

        Raises:
            NotFound: There is no local job of that name, it has no model yet, or its manifest is missing.
            ArtifactError: The destination is refused, or the model does not match its manifest.
        """
        from .artifacts import fetch_uri

        job = self.get(name)
        model = job.status.model if job.status else None
        if model is None:
            raise NotFound(f"local job {name} has no model yet")
        return fetch_uri(model.uri, Path(dest), manifest_sha256=model.sha256, overwrite=overwrite)
