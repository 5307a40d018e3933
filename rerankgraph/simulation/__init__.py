"""The simulated judge: answers every method's prompts from qrels, with configurable
noise, so algorithms can be studied at full scale on a CPU.

It may know the agents and their prompts; nothing in the package depends on it except
the face (the CLI, through `rerankgraph.jobs`). It is built here and handed to the SDK
as a ready engine, so `serving/` never imports it.
"""

from __future__ import annotations

from pathlib import Path

from rerankgraph.data import BeirFolder, read_qrels
from rerankgraph.simulation.judge import SimulatedJudge, SimulationSettings
from rerankgraph.simulation.profile import JudgeProfile, load_profile

__all__ = ["JudgeProfile", "SimulatedJudge", "SimulationSettings", "load_profile",
           "simulated_judge"]


def simulated_judge(qrels: str | Path, data: BeirFolder, settings: SimulationSettings,
                    seed: int = 0, profile: JudgeProfile | None = None) -> SimulatedJudge:
    """A SimulatedJudge that answers from the qrels file `qrels` for the queries and
    corpus of `data`; with `profile`, as the profiled judge does."""
    return SimulatedJudge(read_qrels(qrels), data.queries, data.corpus, settings, seed=seed,
                          profile=profile)
