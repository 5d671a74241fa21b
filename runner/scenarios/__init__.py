"""Load scenarios with MLPerf LoadGen semantics, one per module, found through the registry."""

from runner.scenarios.base import Scenario, ScenarioSettings

__all__ = ["Scenario", "ScenarioSettings"]
