"""The "interactive" scenario: streaming TTFT/TPOT, seeded conversations, early stopping, whole runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import cli
from runner import registry
from runner.backends.base import Backend
from runner.backends.null import NullBackend
from runner.cards import ModelCard
from runner.errors import BackendError, InfersightError, SettingsError
from runner.loadgen.interfaces import StreamQuery, SystemUnderTest
from runner.run import RunRequest, execute_run, prepare_run
from runner.scenarios._conversation import ConversationSource
from runner.scenarios.interactive import (Interactive, InteractiveSettings, bound_check, inter_token_gaps,
                                          stream_figures, validity_reasons)
from runner.sut import BackendSUT
from runner.task import AccuracyResult, ArraySampleLibrary, Task
from runner.validate import check_run

PROMPT = 8  # tokens per sample prompt


def _settings(**kw) -> InteractiveSettings:
    return InteractiveSettings(**{"min_duration_ms": 100, "warmup_duration_ms": 10, "min_query_count": 459,
                                  "min_output_tokens": 2, "max_output_tokens": 12, **kw})


def _card(task: str = "tinylm", file: str = "tinylm-fp32.onnx", sha: str = "0" * 64) -> ModelCard:
    return ModelCard.model_validate({
        "task": task, "task_version": "1.0.0", "name": task, "variant": "fp32", "file": file, "sha256": sha,
        "size_bytes": 16, "precision": "fp32", "opset": 17, "operators": ["Gather"],
        "build": {"script": "tests/test_interactive.py", "seed": 0},
        "inputs": [{"name": "tokens", "dtype": "int64", "shape": ["batch", PROMPT]}],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", PROMPT, 5]}],
        "reference_quality": {"metric": "top1_accuracy", "value": 0.5, "samples": 40, "fp32_reference": 0.5}})


def _tiny_onnx() -> bytes:
    """An ONNX model with the card's signature: logits = a table of 5 scores per token id, looked up."""
    from onnx import TensorProto, helper, numpy_helper

    table = numpy_helper.from_array(np.zeros((128, 5), dtype=np.float32), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "tokens"], ["logits"])], "tinylm",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", PROMPT])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", PROMPT, 5])], [table])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _prompts(n: int = 40) -> np.ndarray:
    return (np.arange(n * PROMPT, dtype=np.int64).reshape(n, PROMPT) % 97) + 1  # never 0, the null token


@pytest.fixture
def stream_sut():
    backend = NullBackend()
    backend.prepare(_card(), Path("unused"))
    qsl = ArraySampleLibrary({"tokens": _prompts()}, 30, name="prompts")
    return BackendSUT(backend, qsl), qsl


# -- the streaming collector on hand-made timestamps -----------------------------------------------

def test_ttft_tpot_and_inter_token_latency_from_hand_made_timestamps():
    rec = {"scheduled_ns": np.array([0, 1_000, 5_000]), "first_token_ns": np.array([100, 1_250, 5_010]),
           "completed_ns": np.array([400, 1_250, 5_910]), "output_tokens": np.array([4, 1, 10])}
    fig = stream_figures(rec)
    assert fig["ttft_ns"].tolist() == [100, 250, 10]
    assert fig["latency_ns"].tolist() == [400, 250, 910]
    # TPOT = (latency - TTFT) / (tokens - 1); the one-token request has none
    assert fig["tpot_ns"].tolist() == [(400 - 100) / 3, (910 - 10) / 9]
    assert inter_token_gaps([100, 150, 300, 400]).tolist() == [50, 150, 100]


@pytest.mark.parametrize("metric", ["ttft", "tpot"])
def test_early_stopping_on_each_bound_needs_the_published_counts(metric):
    # MLPerf early stopping, p99 at 99% confidence: 459 requests with 0 over the bound, 662 with 1, 2010 with 10
    bound_ms = 10.0
    for n, over, needed in ((459, 0, 459), (662, 1, 662), (2010, 10, 2010)):
        values = np.full(n, 5e6)
        values[:over] = 20e6
        assert bound_check(values, bound_ms * 1e6, 0.99, 0.99) == (over, needed, True)
        assert bound_check(values[:-1], bound_ms * 1e6, 0.99, 0.99)[2] is False  # one in-bound fewer
    # through the scenario's verdict: the other metric stays in bound, this one has 10 over in 662
    figures = {"ttft_ns": np.full(662, 1e6), "tpot_ns": np.full(662, 1e6)}
    figures[f"{metric}_ns"][:10] = 50e6
    s = _settings(ttft_bound_ms=bound_ms, tpot_bound_ms=bound_ms, min_duration_ms=1)
    reasons = validity_reasons(s, {"query_count": 662, "duration_ns": 10**9}, figures)
    assert len(reasons) == 1
    assert reasons[0].startswith(f"p99 {metric.upper()} not shown within {metric}_bound_ms 10 ms: 10 of 662")
    assert "needs at least 2,010 requests" in reasons[0]


# -- conversations -----------------------------------------------------------------------------------

def test_conversations_are_seeded_and_within_their_ranges():
    loaded = np.arange(10, 40)
    s = _settings(min_turns=2, max_turns=5, min_output_tokens=3, max_output_tokens=9, think_time_ms=5,
                  session_arrival_rate=100.0)

    def draw(settings, n=300):
        source = ConversationSource(settings, loaded)
        return [source.next() for _ in range(n)]

    a, b = draw(s), draw(s)
    assert a == b and [c.session for c in a] == list(range(300))
    assert draw(s.model_copy(update={"conversation_rng_seed": 1})) != a
    turns = [t for c in a for t in c.turns]
    assert {len(c.turns) for c in a} == {2, 3, 4, 5}
    assert {t.max_new_tokens for t in turns} == set(range(3, 10))
    assert {t.sample_index for t in turns} <= set(loaded.tolist())
    assert all(c.turns[0].think_ns == 0 for c in a) and all(t.think_ns > 0 for c in a for t in c.turns[1:])
    arrivals = np.array([c.arrival_ns for c in a])
    assert np.all(np.diff(arrivals) > 0) and arrivals[0] > 0
    capped = ConversationSource(s.model_copy(update={"session_count": 3}), loaded)
    assert [capped.next() is None for _ in range(4)] == [False, False, False, True]


def test_the_system_builds_contexts_that_grow_turn_by_turn(stream_sut):
    sut, _ = stream_sut
    prompts = _prompts()
    ticks = []
    q = lambda turn, sample, new, window=1000: StreamQuery(7, turn, sample, new, window)  # noqa: E731
    assert sut.issue_stream(q(0, 3, 5), lambda: ticks.append(1)) == PROMPT and len(ticks) == 5
    # turn 1: previous context + its 5 generated tokens (the null backend's token 0) + the new prompt
    expected = np.concatenate([prompts[3], np.zeros(5, np.int64), prompts[11]])
    assert np.array_equal(sut.context_for(q(1, 11, 4))[0], expected)
    assert sut.issue_stream(q(1, 11, 4), lambda: None) == 2 * PROMPT + 5
    # turn 2 with a window of 20 tokens: the most recent 20 are kept
    longer = np.concatenate([expected, np.zeros(4, np.int64), prompts[2]])
    assert np.array_equal(sut.context_for(q(2, 2, 1, 20))[0], longer[-20:])
    sut.end_session(7)
    with pytest.raises(ValueError, match="session 7 turn 1: no history"):
        sut.context_for(q(1, 0, 1))


def test_a_system_that_cannot_stream_says_so():
    class BatchOnly(SystemUnderTest):
        name = "batch-only"

        def issue_query(self, sample_indices, on_batch_done=None, keep_outputs=False):
            return None

    with pytest.raises(BackendError, match="'batch-only' cannot stream"):
        BatchOnly().issue_stream(StreamQuery(0, 0, 0, 1, 10), lambda: None)


# -- the scenario on the null backend ---------------------------------------------------------------

def test_interactive_on_the_null_backend_is_valid_and_logs_every_request(stream_sut):
    sut, qsl = stream_sut
    chunks = []
    result = Interactive(_settings(concurrency=2, min_turns=1, max_turns=4)).run(sut, qsl, sink=chunks.append)
    rec, s = result.records, result.summary
    n = len(rec["completed_ns"])
    assert result.valid and result.reasons == [] and n >= 459 and s["query_count"] == n
    assert set(rec) == {"sample_index", "query_index", "scheduled_ns", "issued_ns", "completed_ns",
                        "first_token_ns", "output_tokens", "stream_id"}
    logged = {k: np.concatenate([c[k] for c in chunks]) for k in rec}
    assert all(np.array_equal(logged[k], rec[k]) for k in rec)  # every row reached the sink once
    assert len(np.unique(rec["query_index"])) == n
    assert np.all((rec["scheduled_ns"] <= rec["issued_ns"]) & (rec["issued_ns"] <= rec["first_token_ns"])
                  & (rec["first_token_ns"] <= rec["completed_ns"]))
    assert set(np.unique(rec["output_tokens"])) <= set(range(2, 13))
    # within a session, each turn is scheduled after the previous one completed
    for session in np.unique(rec["stream_id"])[:50]:
        mine = np.flatnonzero(rec["stream_id"] == session)
        mine = mine[np.argsort(rec["scheduled_ns"][mine])]
        assert np.all(rec["scheduled_ns"][mine][1:] >= rec["completed_ns"][mine][:-1])
    by_turn = s["context_tokens_by_turn"]
    assert by_turn["0"] == PROMPT and by_turn["0"] < by_turn["1"] < by_turn["2"] < by_turn["3"]
    assert s["output_tokens"] == rec["output_tokens"].sum()
    assert result.headline_metric == "tokens_per_second" and result.headline_units == "tokens/s"
    assert result.headline_value == pytest.approx(s["output_tokens"] * 1e9 / s["duration_ns"])
    assert s["ttft_p99_ms"] == pytest.approx(np.sort(rec["first_token_ns"] - rec["scheduled_ns"])[int(n * 0.99)] / 1e6)


def test_poisson_sessions_arrive_on_the_seeded_schedule(stream_sut):
    sut, qsl = stream_sut
    s = _settings(session_arrival_rate=2_000.0, think_time_ms=0.2, concurrency=2, min_query_count=100,
                  warmup_duration_ms=0)
    rec = Interactive(s).run(sut, qsl).records
    firsts = {}
    for session, scheduled in zip(rec["stream_id"], rec["scheduled_ns"]):
        firsts[int(session)] = min(firsts.get(int(session), scheduled), scheduled)
    sessions = sorted(firsts)
    source = ConversationSource(s, np.arange(30))  # arrivals do not depend on the samples
    arrivals = [source.next().arrival_ns for _ in range(sessions[-1] + 1)]
    # a session's first turn is scheduled at its arrival: the gaps are the generator's, to the nanosecond
    assert np.array_equal(np.diff([firsts[k] for k in sessions]), np.diff([arrivals[k] for k in sessions]))


def test_a_session_count_runs_exactly_those_sessions(stream_sut):
    sut, qsl = stream_sut
    s = _settings(session_count=5, min_turns=3, max_turns=3, concurrency=3)
    result = Interactive(s).run(sut, qsl)
    assert sorted(result.records["stream_id"].tolist()) == sorted(list(range(5)) * 3)
    assert not result.valid and "min query count not met: 15 requests < min_query_count 459" in result.reasons


def test_impossible_bounds_make_the_run_invalid_with_the_numbers(stream_sut):
    sut, qsl = stream_sut
    result = Interactive(_settings(ttft_bound_ms=1e-6, tpot_bound_ms=1e-6)).run(sut, qsl)
    n = result.summary["query_count"]
    assert not result.valid and result.headline_value > 0
    ttft, tpot = result.reasons
    assert ttft.startswith(f"p99 TTFT not shown within ttft_bound_ms 1e-06 ms: {n:,} of {n:,} requests over")
    assert tpot.startswith("p99 TPOT not shown within tpot_bound_ms 1e-06 ms")
    assert "too slow for this bound" in ttft and result.summary["ttft_over_bound"] == n


def test_settings_reject_impossible_values():
    from pydantic import ValidationError
    for bad in ({"ttft_bound_ms": 0}, {"tpot_bound_ms": 0}, {"concurrency": 0}, {"min_turns": 3, "max_turns": 2},
                {"min_output_tokens": 9, "max_output_tokens": 8}, {"nonsense": 1}):
        with pytest.raises(ValidationError):
            InteractiveSettings(**bad)


# -- whole runs ---------------------------------------------------------------------------------------

class _TinyLM(Task):
    """A test task with `interactive` in its card: prompts of 8 tokens; quality = share of samples whose
    last token is predicted (argmax of the last logits) as 0."""

    quality_metrics = ("top1_accuracy",)

    def build(self, progress: bool = True) -> list[Path]:
        self.models_dir.mkdir(exist_ok=True)
        model = self.models_dir / "tinylm-fp32.onnx"
        model.write_bytes(_tiny_onnx())  # not run by null, but the card must describe it
        card = _card(sha=hashlib.sha256(model.read_bytes()).hexdigest())
        path = self.model_card_path("fp32")
        path.write_text(json.dumps(card.to_dict()))
        return [path]

    def sample_library(self) -> ArraySampleLibrary:
        return ArraySampleLibrary({"tokens": _prompts()}, 30, name="tinylm")

    def evaluate(self, sample_index, outputs, model) -> AccuracyResult:
        predicted = outputs[0][:, -1].argmax(axis=1)
        correct = predicted == 0
        return AccuracyResult("top1_accuracy", float(correct.mean()), 0.5, sample_index, predicted.tolist(),
                              [0] * len(predicted), correct.tolist())


@pytest.fixture
def tinylm(tmp_path):
    card = {"card_version": 1,
            "metadata": {"name": "tinylm", "version": "1.0.0", "description": "test prompts",
                         "category": "language_model"},
            "data": {"datasets": [{"name": "prompts", "source": "generated in tests", "samples": 40}],
                     "sampling": {"performance_sample_count": 30}},
            "metrics": {"quality": {"metric": "top1_accuracy", "target": {"absolute": 0.5}},
                        "performance": ["tokens_per_second", "ttft_p99_ms", "tpot_p99_ms"]},
            "scenarios": {"interactive": {"ttft_bound_ms": 100, "tpot_bound_ms": 10}, "offline": {}}}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(card))
    cls = type("TinyLMTask", (_TinyLM,), {"card_file": tmp_path / "task.yaml"})
    cls().build()
    registry.register("task", "tinylm", cls)
    yield cls
    registry.unregister("task", "tinylm")


def _quick(**kw) -> RunRequest:
    return RunRequest("tinylm", "null", "interactive", scenario_settings={"warmup_duration_ms": 0, **kw}, quick=True)


def test_a_null_backend_run_is_complete_and_shows_ttft_and_tpot(tinylm, store, db_path):
    run = store.get_run(execute_run(prepare_run(_quick(concurrency=2)), store))
    assert run.status == "complete" and run.validity == "VALID", run.validity_reasons
    assert check_run(store, run.id) == []
    rec = store.read_perf_samples(run.id)
    assert {"first_token_ns", "output_tokens", "stream_id"} <= set(rec)
    assert len(rec["completed_ns"]) == run.summary["query_count"] >= 459
    assert run.headline_metric == "tokens_per_second"
    assert run.settings["scenario"]["ttft_bound_ms"] == 100  # from the task card
    shown = cli("show", str(run.id), db=db_path, check=True).stdout
    assert "streaming:" in shown and "TTFT p50" in shown and "TPOT p50" in shown


@pytest.mark.parametrize("request_kw, error, message", [
    ({"scenario_settings": {"ttft_bound_ms": 0}}, SettingsError, "ttft_bound_ms"),
    ({"scenario_settings": {"tpot_bound_ms": 0}}, SettingsError, "tpot_bound_ms"),
    ({"backend": "batch_only"}, BackendError, "backend 'batch_only' cannot stream"),
])
def test_bad_input_is_one_clear_error_and_nothing_is_written(tinylm, store, request_kw, error, message):
    class BatchOnlyBackend(NullBackend):
        run_stream = Backend.run_stream  # as a backend that never implemented streaming

    registry.register("backend", "batch_only", BatchOnlyBackend)
    try:
        with pytest.raises(error, match=message) as caught:
            prepare_run(RunRequest("tinylm", **{"backend": "null", "scenario": "interactive", **request_kw}))
    finally:
        registry.unregister("backend", "batch_only")
    assert isinstance(caught.value, InfersightError) and caught.value.exit_code == 2
    assert store.list_runs() == []


def test_a_task_without_interactive_in_its_card_exits_2(db_path):
    proc = cli("run", "digits", "--scenario", "interactive", "--backend", "null", db=db_path)
    assert proc.returncode == 2 and "does not support scenario 'interactive'" in proc.stderr
    assert not db_path.exists() or cli("runs", "--json", db=db_path, check=True).stdout.strip() == "[]"


# -- end to end with the real generative task ------------------------------------------------------

def test_charlm_interactive_end_to_end_on_onnxruntime(charlm_models, db_path):
    proc = cli("run", "charlm", "--scenario", "interactive", "--quick", "--json", db=db_path, check=True)
    run = json.loads(proc.stdout)
    assert run["status"] == "complete" and run["headline_metric"] == "tokens_per_second"
    assert run["summary"]["ttft_p99_ms"] > 0 and run["summary"]["tpot_p99_ms"] > 0
    # each turn's context is longer than the last (the model saw the whole conversation so far)
    by_turn = run["summary"]["context_tokens_by_turn"]
    assert [by_turn[k] for k in sorted(by_turn, key=int)] == sorted(by_turn.values())
    assert cli("validate", str(run["id"]), db=db_path).returncode == 0
    assert "TTFT p50" in cli("show", str(run["id"]), db=db_path, check=True).stdout


@pytest.mark.parametrize("args, message", [
    (["--set", "ttft_bound_ms=0"], "ttft_bound_ms"),
    (["--set", "tpot_bound_ms=0"], "tpot_bound_ms"),
])
def test_charlm_bad_input_exits_2_with_nothing_written(charlm_models, db_path, args, message):
    proc = cli("run", "charlm", "--scenario", "interactive", "--quick", *args, db=db_path)
    assert proc.returncode == 2 and message in proc.stderr
    assert not db_path.exists() or cli("runs", "--json", db=db_path, check=True).stdout.strip() == "[]"
