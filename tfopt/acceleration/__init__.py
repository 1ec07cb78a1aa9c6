"""Fit speed: measures XLA, steps_per_execution, precision and input pipelines on the model and machine at hand."""

from tfopt.acceleration.candidate import Candidate
from tfopt.acceleration.hardware import Hardware, detect_hardware
from tfopt.acceleration.input_pipeline import InputDiagnosis, diagnose_input
from tfopt.acceleration.profile_fit import profile_fit
from tfopt.acceleration.profile_report import FitProfile

__all__ = [
    "Candidate",
    "FitProfile",
    "Hardware",
    "InputDiagnosis",
    "detect_hardware",
    "diagnose_input",
    "profile_fit",
]
