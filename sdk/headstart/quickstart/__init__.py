"""The offline quickstart, a demo of Headstart (not part of the trainer image): real transfer learning on
the handwritten digits bundled with scikit-learn (``pip install 'headstart[demo]'``).

``python -m headstart.quickstart --prepare-only`` writes the data and the base; ``--compare DIR`` prints
transferred vs from-scratch; with neither it runs the three jobs itself. Importing this package imports
neither TensorFlow nor scikit-learn.
"""

from .data import CANVAS, QuickstartError, Sizes, Style, digits, png, prepare_data, render
from .jobs import (
    BASE_FILE,
    DEFAULT_WORKDIR,
    JOBS,
    MANIFEST_WORKDIR,
    SCRATCH,
    SOURCE,
    TRANSFER,
    Outcome,
    Summary,
    find_manifests,
    load_jobs,
    main,
    prepare,
    print_summary,
    run_quickstart,
    summary_from_runs,
    write_base,
)

__all__ = [
    "BASE_FILE", "CANVAS", "DEFAULT_WORKDIR", "JOBS", "MANIFEST_WORKDIR", "SCRATCH", "SOURCE", "TRANSFER",
    "Outcome", "QuickstartError", "Sizes", "Style", "Summary", "digits", "find_manifests", "load_jobs", "main",
    "png", "prepare", "prepare_data", "print_summary", "render", "run_quickstart", "summary_from_runs",
    "write_base",
]
