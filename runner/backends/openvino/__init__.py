"""The OpenVINO backend plugin."""

from runner.backends.openvino.backend import OpenVinoBackend
from runner.backends.openvino.config import OpenVinoSettings

__all__ = ["OpenVinoBackend", "OpenVinoSettings"]
