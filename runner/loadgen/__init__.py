"""The load generator: talks to a system under test and a sample library, never to a model."""

from runner.loadgen.interfaces import SampleLibrary, SystemUnderTest
from runner.loadgen.result import ScenarioResult

__all__ = ["SampleLibrary", "SystemUnderTest", "ScenarioResult"]
