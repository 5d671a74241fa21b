"""The four cards (task, model, backend, system): strict pydantic models, hashed and stored."""

from runner.cards._base import StrictModel, canonical_json, card_hash, format_errors, validate_file
from runner.cards.backend import BackendCard
from runner.cards.model import BuildInfo, ModelCard, ReferenceQuality, TensorSpec
from runner.cards.system import SystemCard, capture_system
from runner.cards.task import TaskCard

__all__ = ["StrictModel", "canonical_json", "card_hash", "format_errors", "validate_file", "TaskCard",
           "ModelCard", "TensorSpec", "BuildInfo", "ReferenceQuality", "BackendCard", "SystemCard",
           "capture_system"]
