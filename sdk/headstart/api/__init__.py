"""The FineTuneJob API (headstart.dev/v1alpha1), defined once as pydantic models.

These models generate the CRD schema (``headstart.api.crd``), type the SDK and configure the trainer.
"""

from .checks import check_document, warnings_for
from .cluster import OutputSpec, ResourcesSpec, RunPolicy, RuntimeSpec, SchedulingSpec
from .data import AugmentationSpec, DatasetSpec, ImageFolderSource, Splits, TfdsSource
from .errors import Problem
from .job import API_VERSION, GROUP, KIND, PLURAL, VERSION, FineTuneJob, FineTuneJobSpec, ObjectMeta
from .manifests import Document, ManifestError, load_job, parse_text
from .model import BaseModelSpec, HeadLayer, HeadSpec
from .stages import EarlyStoppingSpec, LogRange, OptimizerSpec, ScheduleSpec, StageSpec, SweepSpec, TrainBase
from .status import Candidate, Condition, FineTuneJobStatus, ModelStatus, Phase, StageResult

load_job_file = load_job

__all__ = [
    "API_VERSION", "GROUP", "KIND", "PLURAL", "VERSION",
    "AugmentationSpec", "BaseModelSpec", "Candidate", "Condition", "DatasetSpec", "Document", "EarlyStoppingSpec",
    "FineTuneJob", "FineTuneJobSpec", "FineTuneJobStatus", "HeadLayer", "HeadSpec", "ImageFolderSource",
    "LogRange", "ManifestError", "ModelStatus", "ObjectMeta", "OptimizerSpec", "OutputSpec", "Phase", "Problem",
    "ResourcesSpec", "RunPolicy", "RuntimeSpec", "ScheduleSpec", "SchedulingSpec", "Splits", "StageResult",
    "StageSpec", "SweepSpec", "TfdsSource", "TrainBase",
    "check_document", "load_job", "load_job_file", "parse_text", "warnings_for",
]
