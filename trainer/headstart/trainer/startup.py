"""TensorFlow's start-up, with its native log lines held back for local runs.

Importing TensorFlow and finding its devices prints C++ lines straight to file descriptor 2, before
absl's logging is set up (so TF_CPP_MIN_LOG_LEVEL cannot silence them all): "All log messages before
absl::InitializeLog()...", "Could not find cuda drivers", "failed call to cuInit: ... CUDA error" on a
machine without a GPU. A newcomer reads the last as a failure. ``start_tensorflow(quiet=True)`` does the
start-up with descriptor 2 pointed at a temporary file and gives the lines back instead; the trainer
image's entrypoint does not call it, so a pod log keeps them, where operators expect them.
"""

from __future__ import annotations

import os
import sys
import tempfile


def start_tensorflow(quiet: bool) -> str:
    """Import TensorFlow and discover its devices; with ``quiet``, return the native lines printed meanwhile
    (empty when not quiet: they went to standard error). Raises what the import raises."""
    if not quiet:
        _start()
        return ""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            _start()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        return held.read().decode("utf-8", "replace")


def _start() -> None:
    import tensorflow as tf

    tf.config.list_physical_devices("GPU")
