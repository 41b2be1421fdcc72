"""What to send and when: arrival processes, lengths, prompts.  Pure and seeded, no I/O."""

from perfkit.workload.arrivals import ArrivalProcess, ConstantArrivals, PoissonArrivals, make_arrivals
from perfkit.workload.lengths import LengthDist, parse_length
from perfkit.workload.prompts import PromptFactory

__all__ = [
    "ArrivalProcess",
    "ConstantArrivals",
    "LengthDist",
    "PoissonArrivals",
    "PromptFactory",
    "make_arrivals",
    "parse_length",
]
