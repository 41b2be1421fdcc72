"""The simulated LLM endpoint: the embedded default and the test double."""

from perfkit.sim.config import SimConfig, SimEvent, load_sim_config
from perfkit.sim.engine import Engine, replay
from perfkit.sim.process import SimProcess, serve

__all__ = ["Engine", "SimConfig", "SimEvent", "SimProcess", "load_sim_config", "replay", "serve"]
