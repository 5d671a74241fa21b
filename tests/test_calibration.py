"""Per-machine timing calibration (cached per host) and the issuing plan it gives: who issues, on which CPU,
where the backend's threads may run (checked by reading back the affinities of real onnxruntime and
OpenVINO threads), and what the system and backend cards record.

The plan's rules run on fake calibrations and fake CPU sets (pure functions); the cache on a clock
given to it and a fake measurement; one test measures this machine for real (figures only checked
for shape: the machine may be loaded).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading

import numpy as np
import pytest

from runner.cards import SystemCard, capture_system
from runner.errors import SettingsError
from runner.loadgen import calibration as cal_mod
from runner.loadgen.calibration import Calibration, cache_path, calibration
from runner.loadgen.isolation import plan_issuing
from runner.run import RunRequest, prepare_backend, prepare_run

NOW = dt.datetime(2027, 2, 1, 12, 0, tzinfo=dt.timezone.utc)


def _cal(overshoot_p99: float = 60.0, overshoot_p999: float = 130.0, handover_p99: float = 30.0,
         measured_at: str = "2027-02-01T11:00:00+00:00", trial: dict | None = None) -> Calibration:
    host, cpu, kernel = cal_mod._identity()
    return Calibration(host=host, cpu_model=cpu, kernel=kernel, measured_at=measured_at,
                       sleep_overshoot_us={"p50": 20.0, "p99": overshoot_p99, "p99_9": overshoot_p999, "max": 400.0},
                       handover_us={"p50": 10.0, "p99": handover_p99, "max": 80.0}, samples=1_500,
                       issuer_trial_us=trial)


def _stored(cal: Calibration) -> dict:
    """What the cache file holds of a calibration."""
    return {k: v for k, v in cal.to_dict().items() if k not in ("source", "note", "spin_us", "issuer_pinning")}


def _trial(pinned_p99: float, floating_p99: float) -> dict:
    return {mode: {"p50": 0.1, "p99": p99, "max": 2 * p99}
            for mode, p99 in (("pinned", pinned_p99), ("floating", floating_p99))}


def _probe(p99: float):
    return lambda cpu: {"p50": 20.0, "p99": p99, "p99_9": 1.5 * p99, "max": 2 * p99}


@pytest.fixture(autouse=True)
def no_probe(monkeypatch):
    """A cached calibration is trusted unless a test gives a probe (a real probe reads this, loaded, machine)."""
    monkeypatch.setattr(cal_mod, "probe", lambda cpu: None)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    measured = []

    def fake_measure(cpu):
        measured.append(cpu)
        return _cal()
    return measured, fake_measure


# -- calibration and its cache --------------------------------------------------------------------------


def test_the_spin_follows_the_measured_overshoot():
    assert _cal(overshoot_p99=60.0, overshoot_p999=130.0).spin_us == 70.0  # p99 + 10 us
    assert _cal(overshoot_p99=3.0, overshoot_p999=3.0).spin_us == 20.0    # at least 20 us
    assert _cal(overshoot_p99=9_000, overshoot_p999=12_000.0).spin_us == 500.0  # at most 0.5 ms
    assert _cal(overshoot_p99=60.0, handover_p99=30.0).thread_lateness_us == 30.0 + 10.0


def test_measured_once_then_read_from_the_cache_until_stale(cache):
    measured, fake = cache
    first = calibration(cpu=1, now=NOW, measure_fn=fake)
    assert first.source == "measured" and measured == [1] and first.note is None
    again = calibration(cpu=1, now=NOW, measure_fn=fake)
    assert again.source == "cache" and measured == [1] and again.sleep_overshoot_us == first.sleep_overshoot_us
    stale = calibration(cpu=1, now=NOW + dt.timedelta(days=8), measure_fn=fake)
    assert stale.source == "measured" and measured == [1, 1]
    assert "days old (stale after 7): measured again" in stale.note


def test_a_calibration_taken_on_a_busy_machine_is_kept_one_hour(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    busy = Calibration(**{**_cal(measured_at=NOW.isoformat()).__dict__, "load_1m": 7.5, "cpus": 2})
    calibration(now=NOW, measure_fn=lambda cpu: busy)
    assert calibration(now=NOW + dt.timedelta(minutes=30), measure_fn=lambda cpu: _cal()).source == "cache"
    again = calibration(now=NOW + dt.timedelta(hours=2), measure_fn=lambda cpu: _cal())
    assert again.source == "measured" and "measured on a busy machine (load average 7.5 on 2 CPUs)" in again.note
    calm = calibration(now=NOW + dt.timedelta(hours=4), measure_fn=lambda cpu: _cal())
    assert calm.source == "cache"  # measured calm (load unknown): kept for days


def test_a_damaged_calibration_file_is_measured_again_and_says_so(cache):
    measured, fake = cache
    path = cache_path()
    path.parent.mkdir(parents=True)
    for damage in ("{not json", json.dumps({"host": "x"}), json.dumps([1, 2]),
                   json.dumps({**json.loads(json.dumps(_cal().to_dict())), "sleep_overshoot_us": {"p50": "fast"}}),
                   json.dumps({**_stored(_cal()), "issuer_trial_us": [1, 2]}),
                   json.dumps({**_stored(_cal()), "issuer_trial_us": {"pinned": {"p50": 1, "p99": 2, "max": 3}}})):
        path.write_text(damage)
        result = calibration(now=NOW, measure_fn=fake)
        assert result.source == "measured" and "was damaged" in result.note and "measured again" in result.note
        assert json.loads(path.read_text())["samples"] == 1_500  # replaced by a whole, good file
    assert len(measured) == 6


def test_a_calibration_of_another_host_is_not_used(cache):
    measured, fake = cache
    path = cache_path()
    path.parent.mkdir(parents=True)
    data = _stored(_cal())
    path.write_text(json.dumps({**data, "kernel": "another"}))
    assert "for another host, CPU or kernel" in calibration(now=NOW, measure_fn=fake).note and measured


def test_an_unwritable_cache_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("INFERSIGHT_CACHE_DIR", str(blocker / "sub"))  # a directory under a file
    result = calibration(now=NOW, measure_fn=lambda cpu: _cal())
    assert result.source == "measured" and result.note.startswith("not cached: cannot write")


def test_measuring_this_machine_gives_usable_figures(monkeypatch):
    monkeypatch.setattr(cal_mod, "SLEEPS", 200)
    monkeypatch.setattr(cal_mod, "TRIAL_QUERIES", 200)
    got = cal_mod.measure(cpu=max(os.sched_getaffinity(0)))
    assert got.samples == 100 and got.sleep_overshoot_us["p50"] <= got.sleep_overshoot_us["p99"]  # the quieter half
    assert 0 <= got.handover_us["p50"] <= got.handover_us["max"] and 20.0 <= got.spin_us <= 500.0
    trial = got.issuer_trial_us  # both arrangements issued a real schedule (figures: shape only, a loaded machine)
    assert set(trial) == {"pinned", "floating"} and all(f["p50"] <= f["p99"] <= f["max"] for f in trial.values())
    assert got.issuer_pinning in ("pinned", "floating") and got.to_dict()["issuer_pinning"] == got.issuer_pinning


def test_the_figures_come_from_the_quieter_half_of_the_blocks():
    values = np.full(2_400, 30.0)
    values[300:600:7] = 5_000.0     # other processes' work during blocks 1 and 5 ...
    values[1_500:1_800:5] = 9_000.0
    values[::97] = 80.0             # ... and the machine's own tail in every block
    got = cal_mod.quieter_half(values, 8)
    assert len(got) == 1_200 and got.max() == 80.0 and list(got) == sorted(got)


def test_a_calibration_far_above_a_fresh_probe_was_taken_under_load_and_is_measured_again(cache):
    busy = _cal(overshoot_p99=3_000.0, overshoot_p999=9_000.0)
    assert calibration(now=NOW, measure_fn=lambda cpu: busy, probe_fn=_probe(50.0)).spin_us == 500.0
    again = calibration(now=NOW, measure_fn=lambda cpu: _cal(), probe_fn=_probe(50.0))
    assert again.source == "measured" and again.spin_us == 70.0
    assert ("(sleep overshoot p99 3e+03 us) was far above a fresh probe's (50 us): it was measured under load"
            in again.note)
    kept = calibration(now=NOW, measure_fn=lambda cpu: busy, probe_fn=_probe(50.0))  # within 2 x 50 + 20 us of 60
    assert kept.source == "cache" and kept.spin_us == 70.0 and kept.note is None


def test_a_calibration_whose_tail_only_was_busy_is_measured_again(cache):
    calibration(now=NOW, measure_fn=lambda cpu: _cal(overshoot_p99=90.0, overshoot_p999=3_700.0), probe_fn=_probe(80.0))
    again = calibration(now=NOW, measure_fn=lambda cpu: _cal(), probe_fn=_probe(80.0))  # probe p99.9: 120 us
    assert again.source == "measured" and again.spin_us == 70.0
    assert "(sleep overshoot p99.9 3.7e+03 us) was far above a fresh probe's (120 us)" in again.note


def test_a_probe_far_above_the_cache_keeps_the_cache_and_says_the_machine_is_busy(cache):
    calibration(now=NOW, measure_fn=lambda cpu: _cal(), probe_fn=_probe(60.0))
    busy_now = calibration(now=NOW, measure_fn=lambda cpu: _cal(overshoot_p999=9_000.0), probe_fn=_probe(4_000.0))
    assert busy_now.source == "cache" and busy_now.spin_us == 70.0
    assert ("a fresh probe's sleep overshoot p99 (4e+03 us) was far above the cached calibration's (60 us)"
            in busy_now.note)


def test_the_probe_is_taken_at_most_once_a_minute_per_cpu(monkeypatch):
    calls = []
    monkeypatch.undo()  # the real probe, over a fake measurement
    monkeypatch.setattr(cal_mod, "_sleep_overshoots", lambda cpu, n: calls.append((cpu, n)) or [30_000] * n)
    monkeypatch.setattr(cal_mod, "_probes", {})
    first = cal_mod.probe(7)
    assert cal_mod.probe(7) == first and first["p99"] == 30.0 and calls == [(7, cal_mod.PROBE_SLEEPS)]
    cal_mod.probe(6)
    monkeypatch.setattr(cal_mod, "PROBE_EVERY_S", 0.0)
    cal_mod.probe(7)
    assert calls == [(7, cal_mod.PROBE_SLEEPS), (6, cal_mod.PROBE_SLEEPS), (7, cal_mod.PROBE_SLEEPS)]


def test_an_older_format_is_measured_again(cache):
    measured, fake = cache
    cache_path().parent.mkdir(parents=True)
    data = _stored(_cal())
    cache_path().write_text(json.dumps({**data, "format": 1}))
    got = calibration(now=NOW, measure_fn=fake)
    assert got.source == "measured" and "was of format 1, not 2: measured again" in got.note and measured


# -- the issuing plan (fake machines) -----------------------------------------------------------------


def test_three_or_more_cpus_give_the_issuer_a_cpu_of_its_own():
    plan = plan_issuing([0, 1, 2, 3], _cal(), 150.0)
    assert (plan.issuer, plan.isolation, plan.issuer_cpu, plan.backend_cpus) == ("process", "dedicated", 3, [0, 1, 2])
    assert plan.spin_us == 70.0 and plan.warning is None and plan.calibration["spin_us"] == 70.0


def test_two_cpus_choose_by_the_calibration():
    quiet = plan_issuing([0, 1], _cal(), 1_000.0)  # the spin covers the overshoot: the issuer gets CPU 1
    assert (quiet.issuer, quiet.issuer_cpu, quiet.backend_cpus) == ("process", 1, [0]) and quiet.warning is None
    assert "spinning 70 us before each query covers this machine's p99 sleep overshoot of 60 us" in quiet.why
    assert "workers issuing their own queries would be ~80 us late" in quiet.why  # (30 + 10) x 2
    # sleeps overshooting beyond the longest spin (0.5 ms): a dedicated issuer ~3.5 ms late at p99, workers issuing
    # their own queries (30 + 3,950) x 2 us: both fit 10 ms; neither fits 1 ms, which the plan warns about
    noisy = _cal(overshoot_p99=4_000.0, overshoot_p999=11_000.0)
    assert plan_issuing([0, 1], noisy, 10_000.0).warning is None
    tight = plan_issuing([0, 1], noisy, 1_000.0)
    assert tight.issuer == "process" and tight.issuer_cpu == 1 and "no issuing arrangement" in tight.warning
    assert "expected ~3.5e+03 us late at p99; workers issuing their own queries would be ~7.96e+03 us late" in tight.why


def test_one_cpu_issues_from_the_workers_and_warns_when_that_cannot_keep_the_tolerance():
    plan = plan_issuing([0], _cal(handover_p99=100.0), 150.0)
    assert plan.issuer == "thread" and "no issuing arrangement" in plan.warning
    assert plan_issuing([0], _cal(), 1_000.0).warning is None


def test_a_machine_whose_sleeps_overshoot_too_much_is_warned_about():
    plan = plan_issuing([0, 1, 2], _cal(overshoot_p99=4_000.0, overshoot_p999=11_000.0), 150.0)
    assert plan.issuer_cpu == 2 and plan.spin_us == 500.0
    assert "no issuing arrangement" in plan.warning and "overshoot by 4e+03 us at p99" in plan.warning


def test_shared_and_forced_settings():
    shared = plan_issuing([0, 1, 2], _cal(), 150.0, isolation="shared")
    assert shared.issuer_cpu == 2 and shared.backend_cpus is None and "not bounded" in shared.warning
    assert plan_issuing([0, 1, 2], _cal(), 1e6, issuer="thread").issuer == "thread"
    assert plan_issuing([0, 1], _cal(), 1e6, isolation="dedicated").issuer_cpu == 1
    with pytest.raises(SettingsError, match="isolation=dedicated needs at least 2 CPUs"):
        plan_issuing([3], _cal(), 150.0, isolation="dedicated")
    with pytest.raises(SettingsError, match="cannot be combined with issuer=thread"):
        plan_issuing([0, 1], _cal(), 150.0, issuer="thread", isolation="dedicated")


# -- isolation read back from real backends -------------------------------------------------------------


def _threads() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0),
                    reason="needs CPUs 0 and 1 (one for the issuer, one for the backend)")
@pytest.mark.parametrize("backend, settings", [("onnxruntime", {"intra_op_threads": 2}),
                                               ("openvino", {"inference_num_threads": 2})])
def test_the_backends_threads_are_kept_off_the_issuers_cpu(cache, digits_models, backend, settings, monkeypatch):
    monkeypatch.setattr(cal_mod, "measure", lambda cpu: _cal())
    req = RunRequest("digits", backend, "server", backend_settings=settings, quick=True,
                     scenario_settings={"isolation": "dedicated"}, cpus="0-1")
    prep = prepare_run(req)
    assert prep.plan.issuer_cpu == 1 and prep.plan.backend_cpus == [0] and prep.backend.settings.cpus == "0"
    card = prep.system.to_dict()
    assert card["issuer_cpu"] == 1 and card["backend_cpus"] == [0] and card["timing_calibration"]["spin_us"] == 70.0
    assert card["timing_calibration"]["issuer_pinning"] == prep.plan.issuer_pinning == "pinned"  # no trial: pinned
    before, mine = _threads(), os.sched_getaffinity(0)
    try:
        prepare_backend(prep)
        spec = prep.model.inputs[0]
        shape = [d if isinstance(d, int) else 4 for d in spec.shape]
        prep.backend.run_batch({spec.name: np.zeros(shape, dtype=spec.dtype)})  # pools may start lazily
        started = _threads() - before
        assert started, "the backend started no thread"
        assert {tid: os.sched_getaffinity(tid) for tid in started} == {tid: {0} for tid in started}
        assert os.sched_getaffinity(0) == mine  # the calling thread got its CPUs back
        assert prep.backend.card().settings["cpus"] == "0"
    finally:
        prep.backend.teardown()


def test_the_issuer_is_pinned_or_floating_as_the_calibrations_trial_found():
    assert _cal(trial=_trial(900.0, 40.0)).issuer_pinning == "floating"
    assert _cal(trial=_trial(40.0, 39.5)).issuer_pinning == "pinned"  # a tie within 1 us stays pinned
    assert _cal(trial=_trial(40.0, 80.0)).issuer_pinning == "pinned" and _cal().issuer_pinning == "pinned"
    floating = plan_issuing([0, 1, 2], _cal(trial=_trial(900.0, 40.0)), 150.0)
    assert (floating.issuer_pinning, floating.issuer_cpus, floating.issuer_cpu, floating.backend_cpus) == (
        "floating", [0, 1, 2], 2, [0, 1])  # the backend is kept off the issuer's CPU either way
    assert ("; issuer floating over CPU 0-2 (the calibration's trial: p99 lateness pinned 900 us, floating 40 us)"
            in floating.why)
    assert floating.calibration["issuer_pinning"] == "floating"
    pinned = plan_issuing([0, 1], _cal(trial=_trial(40.0, 80.0)), 150.0)
    assert (pinned.issuer_pinning, pinned.issuer_cpus) == ("pinned", [1])
    assert "; issuer pinned to CPU 1 (the calibration" in pinned.why
    assert plan_issuing([0], _cal(), 1e6).issuer_pinning is None  # workers issue: no process to pin


def test_show_says_whether_the_issuer_was_pinned_or_floating():
    from infersight.cli.inspect import _lateness, _timing

    plan = plan_issuing([0, 1], _cal(trial=_trial(900.0, 40.0)), 150.0).to_dict()
    card = capture_system(issuing=plan).to_dict()
    assert "issuer floating (trial p99 lateness: pinned 900 us, floating 40 us)" in _timing(card)
    summary = {"issuer": "process", "issue_delay_p50_us": 1.0, "issue_delay_p99_us": 9.0, "issue_delay_count": 10,
               "issue_delay_tolerance_us": 150.0, "issuing": plan}
    text = _lateness(summary)
    assert "issued by process" in text and "; issuer floating over CPU 0-1 (the calibration's trial" in text


def test_the_calibration_is_recorded_but_not_hashed():
    plain = capture_system()
    with_cal = capture_system(issuing={"issuer_cpu": None, "backend_cpus": None, "calibration": _cal().to_dict()})
    assert "timing_calibration" not in plain.to_dict() and "issuer_cpu" not in plain.to_dict()
    assert with_cal.to_dict()["timing_calibration"]["sleep_overshoot_us"]["p99"] == 60.0
    assert with_cal.card_hash() == plain.card_hash()
    isolated = capture_system(issuing={"issuer_cpu": 1, "backend_cpus": [0], "calibration": None})
    assert isolated.card_hash() != plain.card_hash()  # the CPU arrangement is configuration
    assert SystemCard.hashed_part(with_cal.to_dict()) == plain.to_dict()


def test_thread_pinned_restores_and_children_inherit():
    from runner.cpus import thread_pinned

    seen = {}
    mine = os.sched_getaffinity(0)
    with thread_pinned([min(mine)]):
        t = threading.Thread(target=lambda: seen.update(cpus=os.sched_getaffinity(0)))
        t.start()
        t.join()
    assert seen["cpus"] == {min(mine)} and os.sched_getaffinity(0) == mine
