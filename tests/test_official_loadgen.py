"""`--loadgen mlperf`: our backend and task driven by MLCommons' LoadGen, stored with the same cards."""

from __future__ import annotations

import pytest

from runner.errors import SettingsError
from runner.run import RunRequest, execute_run, prepare_run


@pytest.mark.parametrize("scenario, metric", [("single_stream", "latency_p90_ms"), ("offline", "samples_per_second")])
def test_loadgen_mode_gives_a_complete_run_with_our_cards(store, digits_models, scenario, metric):
    ours = store.get_run(execute_run(prepare_run(RunRequest("digits", scenario=scenario, quick=True)), store))
    req = RunRequest("digits", scenario=scenario, quick=True, loadgen="mlperf")
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.status == "complete" and run.validity == "VALID", run
    assert run.headline_metric == metric and run.headline_value > 0
    assert "MLCommons LoadGen" in run.source and run.settings["loadgen"] == "mlperf"
    assert "MLPerf Results Summary" in run.summary["loadgen_summary"]
    for kind in ("task", "model", "backend", "system"):
        assert run.card_hashes[kind] == ours.card_hashes[kind]
    # the accuracy log decoded from LoadGen's mlperf_log_accuracy.json scores like our own pass
    assert run.accuracy_value == pytest.approx(ours.accuracy_value)
    assert len(store.read_accuracy_samples(run.id)) == 360


def test_unknown_load_generator_is_refused(digits_models):
    with pytest.raises(SettingsError, match="unknown load generator 'locust'; known: infersight, mlperf"):
        prepare_run(RunRequest("digits", loadgen="locust"))


@pytest.mark.parametrize("scenario", ["single_stream", "multi_stream"])
def test_a_warm_up_slower_than_the_timed_run_still_meets_min_duration(store, digits_models, monkeypatch, scenario):
    """LoadGen pre-generates its queries from the expected latency: a warm-up that saw a busy machine
    (injected here as a warm-up reporting a fifth of the real rate) must not leave the run short."""
    import runner.official_loadgen as official

    real = official.warm_up
    monkeypatch.setattr(official, "warm_up", lambda *a, **k: real(*a, **k) / 5)
    req = RunRequest("digits", scenario=scenario, quick=True, loadgen="mlperf")
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.validity == "VALID", run.summary["loadgen_summary"]
    assert "Min duration satisfied : Yes" in run.summary["loadgen_summary"]
    # LoadGen judges min duration from its own first issue; our span (first issue to last completion, as we
    # timestamp them) may be a few ms shorter on a busy machine
    assert run.summary["duration_ns"] >= 0.98e9


def test_charlm_runs_under_loadgen_and_scores_its_logits_with_their_time_axis(store, charlm_models):
    """LoadGen's accuracy log keeps a response's bytes only: charlm's logits [time, vocab] (a dynamic axis) are
    shaped back from the rows the bridge answered with, and score as our own accuracy pass does."""
    from runner.run import accuracy_pass, prepare_backend
    from runner.sut import BackendSUT

    req = RunRequest("charlm", scenario="server", quick=True, loadgen="mlperf",
                     scenario_settings={"target_qps": 200, "latency_bound_ms": 1_000, "min_duration_ms": 200,
                                        "min_query_count": 32, "warmup_duration_ms": 0})
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.status == "complete" and run.accuracy_metric == "bits_per_char" and run.accuracy_passed
    prep = prepare_run(RunRequest("charlm", scenario="offline", quick=True))
    prepare_backend(prep)
    try:
        qsl = prep.task.sample_library()
        ours = accuracy_pass(prep.task, BackendSUT(prep.backend, qsl), qsl.total_sample_count, prep.model)
    finally:
        prep.backend.teardown()
    assert run.accuracy_value == pytest.approx(ours.value, rel=1e-4)  # batch 1 there, batches here
    assert len(store.read_accuracy_samples(run.id)) == qsl.total_sample_count
