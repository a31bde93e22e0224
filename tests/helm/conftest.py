"""The `helm` fixture: the real helm, built from its Go module (helm_binary.py) once, before the tests that
need it run (outside their timeouts, as the control plane's binaries are), only when one of them was selected."""

from __future__ import annotations

import subprocess

import helm_binary
import pytest

HELM = pytest.StashKey[object]()


def _needs_helm(session) -> bool:
    return any("helm" in getattr(item, "fixturenames", ()) for item in session.items)


def pytest_collection_finish(session):
    if session.config.option.collectonly or not _needs_helm(session):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("helm: locating the binary (building it from its Go module if not cached) ...")
    try:
        session.config.stash[HELM] = helm_binary.resolve()
    except helm_binary.HelmMissing as exc:
        session.config.stash[HELM] = exc


@pytest.fixture(scope="session")
def helm_path(pytestconfig):
    found = pytestconfig.stash.get(HELM, None)
    if found is None:  # the collection hook did not run
        try:
            found = helm_binary.resolve()
        except helm_binary.HelmMissing as exc:
            found = exc
    if isinstance(found, Exception):
        pytest.fail(f"helm unavailable: {found}", pytrace=False)
    return found


@pytest.fixture(scope="session")
def helm(helm_path, tmp_path_factory):
    """helm(*args, check=True) -> CompletedProcess (text, 120 s bound), with its own empty config and cache."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_CACHE_HOME": str(home / "cache"), "HELM_DATA_HOME": str(home / "data"), "KUBECONFIG": "/dev/null"}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(helm_path), *args], capture_output=True, text=True, env=env, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    return run
