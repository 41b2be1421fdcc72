"""What to send and when: arrival processes, lengths, prompts, user classes, scenarios.

Generators are pure and seeded; ``loaders`` and ``scenario`` read files.
"""

from perfkit.workload.arrivals import (
    ArrivalProcess,
    ConstantArrivals,
    GammaArrivals,
    PoissonArrivals,
    RateProfile,
    TraceArrivals,
    make_arrivals,
)
from perfkit.workload.checks import Check, Probe
from perfkit.workload.content import (
    Conversation,
    DatasetEntry,
    Slo,
    UserClass,
    Workload,
)
from perfkit.workload.lengths import LengthDist, parse_length
from perfkit.workload.loaders import load_dataset, load_trace
from perfkit.workload.phase import PhaseSpec, StopRule
from perfkit.workload.prompts import PromptFactory
from perfkit.workload.scenario import Scenario, load_scenario, parse_scenario

__all__ = [
    "ArrivalProcess",
    "Check",
    "ConstantArrivals",
    "Conversation",
    "DatasetEntry",
    "GammaArrivals",
    "LengthDist",
    "PhaseSpec",
    "PoissonArrivals",
    "Probe",
    "PromptFactory",
    "RateProfile",
    "Scenario",
    "Slo",
    "StopRule",
    "TraceArrivals",
    "UserClass",
    "Workload",
    "load_dataset",
    "load_scenario",
    "load_trace",
    "make_arrivals",
    "parse_length",
    "parse_scenario",
]
