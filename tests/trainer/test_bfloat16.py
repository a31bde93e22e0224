"""The CPU bfloat16 switch of the frozen base's feature pass: where it turns on, how a run records it."""

from __future__ import annotations

import json

import pytest

from headstart.api import RuntimeSpec


def test_auto_only_with_amx_and_the_switch_overrides():
    from headstart.trainer.runtime import cpu_bfloat16

    assert cpu_bfloat16("auto", {"avx2", "fma"}) is False  # this project's AMD EPYC: emulated, slower
    assert cpu_bfloat16("auto", {"avx512f", "avx512_bf16"}) is False  # no AMX: not measured faster
    assert cpu_bfloat16("auto", {"avx512_bf16", "amx_bf16", "amx_tile"}) is True
    assert cpu_bfloat16("on", set()) is True and cpu_bfloat16("off", {"amx_bf16"}) is False


def test_the_switch_is_off_unless_asked_for(monkeypatch):
    from headstart.trainer.runtime import _bfloat16_mode

    monkeypatch.delenv("HEADSTART_CPU_BFLOAT16", raising=False)
    assert _bfloat16_mode() == "off"  # float32 features, as every other path, even on a CPU with AMX
    monkeypatch.setenv("HEADSTART_CPU_BFLOAT16", " Auto ")
    assert _bfloat16_mode() == "auto"


def test_a_bad_switch_is_one_line_naming_the_variable(monkeypatch):
    from headstart.trainer import SpecError
    from headstart.trainer.runtime import configure

    monkeypatch.setenv("HEADSTART_CPU_BFLOAT16", "fast")
    with pytest.raises(SpecError, match=r"^HEADSTART_CPU_BFLOAT16='fast': expected auto, on or off$"):
        configure(RuntimeSpec(), 1)


def test_a_run_with_the_switch_on_computes_features_in_bfloat16_and_says_so(folder_job, tmp_path, monkeypatch):
    from headstart.trainer import run_job
    from headstart.trainer.runtime import configure

    monkeypatch.setenv("HEADSTART_CPU_BFLOAT16", "off")
    assert configure(RuntimeSpec(), 1).feature_dtype == "float32"
    monkeypatch.setenv("HEADSTART_CPU_BFLOAT16", "on")
    assert configure(RuntimeSpec(), 1).feature_dtype == "bfloat16"
    assert configure(RuntimeSpec(mixed_precision=True), 1).feature_dtype == "float32"  # mixed precision wins
    messages = []

    class Messages:
        def __getattr__(self, name):
            return (lambda text: messages.append(text)) if name == "message" else (lambda *a: None)

    out = tmp_path / "out"
    result = run_job(folder_job(output={"uri": str(out), "formats": ["keras"]}), reporter=Messages())
    assert result.stages[0].feature_cache
    assert "computing the frozen base's features once (bfloat16)" in messages
    assert json.loads((out / "metrics.json").read_text())["runtime"]["feature_dtype"] == "bfloat16"
    assert "frozen-base feature pass in bfloat16" in (out / "README.md").read_text()
