"""The status words of headstart.api: every reason with its phase, meaning and advice; the trainer's exit
codes and the reasons they give; phases that print as their word."""

from __future__ import annotations

from headstart.api.exitcodes import PERMANENT_EXIT_CODES, ExitCode, failure, is_permanent, reason_for_exit
from headstart.api.reasons import Phase, Reason


def test_phases_print_as_their_word():
    assert str(Phase.FAILED) == f"{Phase.FAILED}" == "Failed"
    assert str(Reason.BAD_DATASET) == f"{Reason.BAD_DATASET}" == "BadDataset"
    assert Phase.SUCCEEDED.terminal and not Phase.RUNNING.terminal


def test_every_reason_has_a_meaning_and_the_failures_and_waits_say_what_to_do():
    for reason in Reason:
        assert reason.value[0].isupper() and reason.value.isalnum(), reason
        assert reason.meaning, reason
        if reason.phase in (Phase.FAILED, Phase.SUSPENDED) or reason.warning:
            assert reason.advice, f"{reason} needs advice for `headstart why`"
        assert not (reason.warning and reason.quiet), reason
    assert Reason.lookup("InsufficientGPU") is Reason.INSUFFICIENT_GPU
    assert Reason.lookup("NoSuchWord") is None and Reason.lookup(None) is None


def test_exit_codes_and_their_reasons():
    assert PERMANENT_EXIT_CODES == (2, 3, 10, 11, 12, 13, 14)
    assert [reason_for_exit(c) for c in PERMANENT_EXIT_CODES] == [
        Reason.INVALID_SPEC, Reason.BAD_IMAGE, Reason.BAD_BASE_MODEL, Reason.BAD_DATASET, Reason.OUTPUT_CONFLICT,
        Reason.OUTPUT_UNWRITABLE, Reason.BAD_CHECKPOINT]
    for transient in (ExitCode.UNEXPECTED, ExitCode.TEMPORARY, ExitCode.INTERRUPTED, ExitCode.KILLED,
                      ExitCode.TERMINATED):
        assert not is_permanent(transient) and not transient.permanent
        assert reason_for_exit(transient) is Reason.TRAINER_FAILED
    assert failure(11, "no folder at /x") == (Reason.BAD_DATASET, "the dataset cannot be read (exit code 11, not "
                                                                   "retried): no folder at /x")
    assert failure(75) == (Reason.TRAINER_FAILED, "the trainer exited with code 75")
