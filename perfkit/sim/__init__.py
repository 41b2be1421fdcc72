"""The simulated LLM endpoint: the embedded default and the test double."""

from perfkit.sim.config import SimConfig, SimEvent, load_sim_config
from perfkit.sim.engine import Engine, closed_loop_replay, replay
from perfkit.sim.process import SimProcess, serve

__all__ = ["Engine", "SimConfig", "SimEvent", "SimProcess", "closed_loop_replay", "load_sim_config", "replay", "serve"]
