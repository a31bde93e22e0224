"""``python -m headstart.trainer --job job.yaml [--output URI] [--from-job NAME=URI ...]``

The training container's entrypoint. Progress goes to standard output, one line per event; a failure
is one line on standard error and a non-zero exit status (headstart.api.exitcodes). In a pod started by
the operator, progress also goes to the operator's progress endpoint (progress.py).
"""

from __future__ import annotations

import argparse
import sys

from headstart.api.exitcodes import ExitCode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m headstart.trainer",
                                     description="Run a FineTuneJob's training: fine-tune a pretrained Keras "
                                                 "model and write it to the output location.")
    parser.add_argument("--job", required=True, help="FineTuneJob manifest (YAML or JSON; '-' for stdin)")
    parser.add_argument("--output", default=None, help="output URI (default: the spec's output.uri)")
    parser.add_argument("--from-job", action="append", default=[], metavar="NAME=URI",
                        help="output URI of a job named by baseModel.fromJob (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mapping: dict[str, str] = {}
    for item in args.from_job:
        name, sep, uri = item.partition("=")
        if not sep or not name or not uri:
            print(f"error: --from-job {item!r}: expected NAME=URI", file=sys.stderr)
            return ExitCode.SPEC
        mapping[name] = uri

    def resolve(name: str) -> str:
        from .errors import BaseModelError

        if name not in mapping:
            raise BaseModelError(f"baseModel.fromJob {name!r}: its output is unknown here (pass --from-job "
                                 f"{name}=URI)")
        return mapping[name]

    from .cli import run_file
    from .progress import from_environment
    from .reporting import Fanout, LineReporter

    reporter = LineReporter()
    in_cluster = from_environment()  # set by the operator: progress goes to its endpoint too
    if in_cluster is None:
        return run_file(args.job, args.output, reporter, resolve, traceback_on_bug=True)
    # Other failures leave the termination message empty: the pod's policy FallbackToLogsOnError then
    # hands the operator the log's last line, the one-line error.
    try:
        return run_file(args.job, args.output, Fanout(reporter, in_cluster), resolve, traceback_on_bug=True)
    finally:
        in_cluster.close()  # the last snapshot, within a bounded wait


if __name__ == "__main__":
    sys.exit(main())
