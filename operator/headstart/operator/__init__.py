"""The Headstart operator (kopf): FineTuneJobs into training Jobs, their status from what it observes and
from the progress its pods post (``python -m headstart.operator``; operator/README.md). Importing the package
imports neither kopf nor the kubernetes client."""
