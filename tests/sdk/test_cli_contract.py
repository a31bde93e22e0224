"""The command line's contract, without a cluster: one exit-code table (README, `headstart --help`) that every
command keeps, kubectl's habits (connection options before or after the command, -o the output format,
NAME...), and errors a person reads (one line, kubectl's words, the right code, nothing secret)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from headstart.sdk import exit_codes
from headstart.sdk.cli import COMMANDS, app

REPO = Path(__file__).resolve().parents[2]
VALID = REPO / "examples" / "flowers-xception.yaml"
runner = CliRunner()

#: Each command with arguments that reach a cluster (or need one); every cluster command is here.
CLUSTER_CALLS = {
    "submit": ["-f", str(VALID)], "get": ["x"], "list": [], "watch": ["x"], "logs": ["x"],
    "fetch": ["x", "--to", "out"], "why": ["x"], "suspend": ["x"], "resume": ["x"], "delete": ["x"],
}
LOCAL_COMMANDS = {"init", "validate", "run", "crd"}


def headstart(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def one_line(result) -> str:
    """The one line a failure says on stderr (no traceback, nothing else)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def dead_kubeconfig(path: Path, server: str = "https://127.0.0.1:1", token: str = "s3cr3t-t0ken") -> Path:
    """A well-formed kubeconfig whose API server refuses connections (port 1: nothing listens)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "dev", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "dev", "user": {"token": token}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev", "namespace": "team-a"}}]}))
    return path


def test_the_exit_code_table_is_one_in_the_code_the_help_and_the_readme():
    readme = (REPO / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", readme.split("Exit codes, the same for every command")[1]
                      .split("\n\n")[1], re.M)
    assert [(int(code), meaning) for code, meaning in rows] == [(c, m) for c, m in exit_codes.TABLE]
    helped = headstart("--help")
    assert helped.exit_code == 0
    for code, meaning in exit_codes.TABLE:
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", helped.stdout, re.M), (code, helped.stdout)
    assert len({code for code, _ in exit_codes.TABLE}) == len(exit_codes.TABLE)


def test_the_command_list_says_what_each_command_s_own_help_says():
    import importlib

    for name, (module, function, line) in COMMANDS.items():
        doc = getattr(importlib.import_module(f"headstart.sdk.cli.{module}"), function).__doc__
        assert doc.strip().splitlines()[0] == line, name
        assert headstart(name, "--help").stdout.splitlines()[2].strip() == line, name
    listed = headstart("--help").stdout
    assert all(re.search(rf"^  {name}\s+{re.escape(line)}$", listed, re.M) for name, (_, _, line) in COMMANDS.items())
    typo = headstart("lst")
    assert typo.exit_code == exit_codes.USAGE and "No such command 'lst'. Did you mean 'list'?" in typo.output


def test_every_command_is_held_to_the_table():
    commands = set(COMMANDS)
    assert commands == set(CLUSTER_CALLS) | LOCAL_COMMANDS  # a new command gets a row here
    for command in sorted(commands):
        unknown = headstart(command, "--no-such-flag")
        assert unknown.exit_code == exit_codes.USAGE, (command, unknown.output)
        assert "No such option: --no-such-flag" in unknown.output, unknown.output
        assert headstart(command, "--help").exit_code == exit_codes.OK


def test_every_cluster_command_says_a_missing_kubeconfig_in_one_line_with_code_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a development checkout: no `make cluster` hint
    for command, args in CLUSTER_CALLS.items():
        result = headstart(command, *args, "--kubeconfig", str(tmp_path / "none"))
        assert result.exit_code == exit_codes.FAILED, (command, result.output)
        assert one_line(result) == (f"headstart {command}: no kubeconfig at {tmp_path / 'none'}: give one with "
                                    "--kubeconfig or KUBECONFIG")


def test_a_malformed_kubeconfig_is_one_line_with_code_1_and_shows_no_secret(tmp_path):
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nusers: [{name: u, user: {token: s3cr3t-t0ken}}\n  - clusters: [\n")
    result = headstart("list", "--kubeconfig", str(broken))
    assert result.exit_code == exit_codes.FAILED, result.output
    line = one_line(result)
    assert line.startswith(f"headstart list: cannot read kubeconfig {broken}: line 3, column 3: malformed YAML: ")
    assert "s3cr3t" not in result.output
    shaped = tmp_path / "shaped"
    shaped.write_text("clusters: 5\n")
    result = headstart("get", "x", "--kubeconfig", str(shaped))
    assert result.exit_code == exit_codes.FAILED
    assert one_line(result).startswith(f"headstart get: cannot use kubeconfig {shaped}: it is not a kubeconfig")


def test_a_server_that_refuses_is_said_as_kubectl_says_it(tmp_path):
    dead = dead_kubeconfig(tmp_path / "dead")
    for args in (["list"], ["get", "x"], ["delete", "a", "b"]):
        result = headstart(*args, "--kubeconfig", str(dead))
        assert result.exit_code == exit_codes.FAILED, result.output
        assert one_line(result) == (f"headstart {args[0]}: the connection to the server 127.0.0.1:1 was refused - "
                                    "did you specify the right host or port?")
        assert "HTTPSConnectionPool" not in result.output and "Max retries" not in result.output


def test_an_unknown_context_names_the_ones_there_are(tmp_path):
    result = headstart("list", "--kubeconfig", str(dead_kubeconfig(tmp_path / "kc")), "--context", "prod")
    assert result.exit_code == exit_codes.FAILED
    assert one_line(result) == (f"headstart list: no context 'prod' in {tmp_path / 'kc'} (its contexts: dev): "
                                "choose one with --context")


def test_make_cluster_is_offered_only_in_a_development_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    elsewhere = headstart("list")
    assert "make cluster" not in elsewhere.output and "--kubeconfig or KUBECONFIG" in elsewhere.stderr
    monkeypatch.chdir(REPO)
    here = headstart("list")
    assert here.exit_code == exit_codes.FAILED
    assert one_line(here).endswith("give one with --kubeconfig or KUBECONFIG (or run `make cluster` here for this "
                                   "checkout's test cluster)")


def test_submit_checks_the_manifest_before_the_kubeconfig(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.read_text().replace("epochs: 10", "epochs: true"))
    result = headstart("submit", "-f", str(bad), "--kubeconfig", str(tmp_path / "none"))
    assert result.exit_code == exit_codes.FAILED
    assert one_line(result) == f"headstart submit: {bad}[0]: spec.stages[1].epochs: must be an integer (got True)"


def test_connection_options_before_the_command_and_after_it_wins(tmp_path):
    dead = dead_kubeconfig(tmp_path / "dead")
    before = headstart("--kubeconfig", str(dead), "-n", "team-b", "get", "x")
    assert "connection to the server 127.0.0.1:1 was refused" in before.stderr
    after_wins = headstart("--kubeconfig", str(tmp_path / "none"), "get", "x", "--kubeconfig", str(dead))
    assert "was refused" in after_wins.stderr
    local = headstart("--local", "get", "nobody")
    assert local.exit_code == exit_codes.FAILED and "no local job nobody" in local.stderr
    namespaced = headstart("-n", "team-b", "init", "x", "-d", "tfds:mnist", "--output-uri", "s3://b/m")
    assert yaml.safe_load(namespaced.stdout)["metadata"]["namespace"] == "team-b"


def test_usage_lines_are_in_one_style():
    for name in COMMANDS:
        first = headstart(name, "--help").stdout.splitlines()[0]
        assert re.fullmatch(rf"Usage: headstart {name} \[OPTIONS\]( [A-Z]+(\.\.\.)?)*", first), first
    assert headstart("delete", "--help").stdout.startswith("Usage: headstart delete [OPTIONS] NAME...")


def test_o_is_the_output_format_everywhere():
    for name in COMMANDS:
        text = headstart(name, "--help").stdout
        if re.search(r"^\s+-o\b", text, re.M):
            assert re.search(r"-o, --output FORMAT\s+Output format: ", text), (name, text)
    made = headstart("init", "x", "-d", "tfds:mnist", "--output-uri", "s3://b/m", "-o", "json")
    assert made.exit_code == 0 and json.loads(made.stdout)["spec"]["output"]["uri"] == "s3://b/m"
    wrong = headstart("get", "x", "-o", "xml")
    assert wrong.exit_code == exit_codes.USAGE
    assert one_line(wrong) == "headstart get: --output must be one of table, wide, json, yaml, name (got 'xml')"
    assert "--output-uri URI" in headstart("run", "--help").stdout


def test_run_exits_with_the_table_s_codes(tmp_path):
    from headstart.api.exitcodes import ExitCode

    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.read_text().replace("learningRate: 0.2", "learningRate: '0.2'"))
    result = headstart("run", str(bad))
    assert result.exit_code == exit_codes.FAILED, result.output
    assert one_line(result) == f"headstart run: {bad}[0]: spec.stages[0].optimizer.learningRate: must be a number " \
                               "(got '0.2')"
    trainer_codes = [code for code in ExitCode if code not in (ExitCode.SUCCESS, ExitCode.INTERRUPTED)]
    assert {exit_codes.from_trainer(code) for code in trainer_codes} == {exit_codes.FAILED}
    assert exit_codes.from_trainer(0) == 0 and exit_codes.from_trainer(130) == 130


def test_an_internal_error_is_one_line_with_code_4():
    code = ("import sys\nimport headstart.api.crd as crd\n"
            "def broken(): raise RuntimeError('a bug')\n"
            "crd.crd_yaml = broken\nsys.argv = ['headstart', 'crd']\n"
            "from headstart.sdk.cli import main\nmain()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == exit_codes.INTERNAL
    assert result.stderr.strip() == ("headstart: internal error: RuntimeError: a bug (HEADSTART_DEBUG=1 shows the "
                                     "traceback)")
