"""Task cards: every shipped card validates; bad cards fail with file, line and field path."""

from pathlib import Path

import pytest

from runner import registry
from runner.errors import CardError
from runner.task import load_task_card

REPO = Path(__file__).resolve().parent.parent
DIGITS = (REPO / "tasks" / "digits" / "task.yaml").read_text()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", registry.names("task"))
def test_every_task_card_validates(name):
    task = registry.get("task", name)()
    assert task.card.metadata.name == name
    assert set(task.card.scenarios) <= set(registry.names("scenario"))


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = _write(tmp_path, DIGITS.replace("  category: image_classification", "  category: [oops"))
    with pytest.raises(CardError) as exc:
        load_task_card(path)
    assert str(exc.value).startswith(f"{path}:") and "malformed YAML" in str(exc.value)


def test_unknown_field_names_line_and_path(tmp_path):
    text = DIGITS.replace("  category: image_classification", "  category: image_classification\n  colour: blue")
    path = _write(tmp_path, text)
    with pytest.raises(CardError) as exc:
        load_task_card(path)
    line = text.splitlines().index("  colour: blue") + 1
    assert str(exc.value) == f"{path}:{line}: metadata.colour: unknown field (not part of the card; check the spelling)"


def test_mistyped_value_names_line_and_path(tmp_path):
    text = DIGITS.replace("version: 1.0.0", "version: one")
    path = _write(tmp_path, text)
    with pytest.raises(CardError) as exc:
        load_task_card(path)
    assert f"{path}:5: metadata.version:" in str(exc.value)


def test_unknown_scenario_is_named_with_known_ones(tmp_path):
    path = _write(tmp_path, DIGITS.replace("  offline:\n", "  offlien:\n"))
    with pytest.raises(CardError) as exc:
        load_task_card(path)
    message = str(exc.value)
    assert "scenarios.offlien" in message and "unknown scenario 'offlien'" in message and "single_stream" in message


def test_bad_scenario_setting_is_located(tmp_path):
    text = DIGITS.replace("    min_sample_count: 24576", "    min_sample_count: -5")
    path = _write(tmp_path, text)
    with pytest.raises(CardError) as exc:
        load_task_card(path)
    line = text.splitlines().index("    min_sample_count: -5") + 1
    assert str(exc.value).startswith(f"{path}:{line}: scenarios.offline.min_sample_count: Input should be greater than 0")


def test_quality_target_needs_exactly_one_form(tmp_path):
    text = DIGITS.replace("      fraction_of_reference: 0.99", "      fraction_of_reference: 0.99\n      absolute: 0.9")
    with pytest.raises(CardError, match="give exactly one of fraction_of_reference or absolute"):
        load_task_card(_write(tmp_path, text))


def test_card_hash_is_stable_and_sensitive():
    card = registry.get("task", "digits")().card
    again = load_task_card(REPO / "tasks" / "digits" / "task.yaml")
    assert card.card_hash() == again.card_hash()
    changed = card.model_copy(update={"constraints": card.constraints.model_copy(update={"max_latency_p90_ms": 5})})
    assert changed.card_hash() != card.card_hash()
