"""The names and labels shared by operator, trainer and SDK."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from headstart.api import names

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("name", ["a", "flowers-xception", "x" * 63, "y" * 64, "long-" * 50 + "z"])
def test_child_names_are_deterministic_dns_labels_of_at_most_63(name):
    for make in (names.job_name_for, lambda job: names.child_name(job, "fetch"), names.label_value):
        got = make(name)
        assert got == make(name)
        assert len(got) <= 63 and DNS_LABEL.match(got), got


def test_short_names_are_kept_and_long_ones_get_a_hash():
    assert names.job_name_for("flowers") == "flowers"
    assert names.child_name("flowers", "fetch") == "flowers-fetch"
    a, b = "p" * 70 + "-one", "p" * 70 + "-two"
    assert names.job_name_for(a) != names.job_name_for(b)  # same 54-character prefix, different hash
    assert names.child_name(a, "fetch").endswith("-fetch")
    assert names.label_value(a) != names.label_value(b)


def test_children_labels_and_selector_agree():
    labels = names.child_labels("flowers")
    assert labels[names.LABEL_FINETUNEJOB] == "flowers"
    assert labels[names.LABEL_MANAGED_BY] == names.MANAGED_BY
    selector = dict(part.split("=") for part in names.selector_for("flowers").split(","))
    assert all(labels[k] == v for k, v in selector.items())


def test_names_module_is_import_light():
    code = ("import sys, headstart.api.names\n"
            "print([m for m in ('kubernetes', 'kopf', 'tensorflow', 'keras') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
