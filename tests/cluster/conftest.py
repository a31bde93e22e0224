"""Cluster tests: the fixtures live in controlplane/fixtures.py (see its docstring)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # makes `controlplane` importable

from controlplane.fixtures import (  # noqa: E402,F401 - pytest finds fixtures and hooks by name
    api_client,
    bin_dir,
    control_plane,
    control_plane_bins,
    kubeconfig,
    kubectl,
    kubelet,
    namespace,
    new_namespace,
    pytest_collection_finish,
    pytest_collection_modifyitems,
)
