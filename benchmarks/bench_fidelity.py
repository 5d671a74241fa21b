"""Benchmark: load-generator fidelity on real models, ours beside MLCommons LoadGen, in one run.

For every local task with a server scenario (digits, charlm), each backend (onnxruntime, OpenVINO)
and model variant (fp32, int8): find the peak VALID target QPS with our peak search (short probes),
then run the server scenario at 25%, 50% and 75% of it with our load generator and with LoadGen
(`--loadgen mlperf`) on the same model, backend settings and CPUs (LoadGen's run gets the backend
settings ours ran with: the same threads on the same CPUs). Printed side by side:
- lateness p50 / p99 of the issuer (ours: issued - scheduled; LoadGen does not expose its scheduled
  times, so it has none), and our run's tolerance;
- the KS p-value of the issued inter-arrival gaps against exponential(1 / target) (ours: issue
  timestamps of the issuer; LoadGen: its issue callbacks);
- p99 latency (ours from the scheduled time; LoadGen's own from its summary) and each verdict.

A summary table closes the output: per configuration and load, our lateness p99, our KS p, LoadGen's
KS p, both verdicts and whether they agree (a run of ours that is a load-generator limit has no
verdict to compare), then how many agree and how many of ours are INVALID where LoadGen's is VALID.
Every run is a stored run in a temporary SQLite store. Run:
`.venv/bin/python benchmarks/bench_fidelity.py [--tasks digits] [--backends onnxruntime] [--variants fp32]
 [--fractions 0.25 0.5 0.75] [--probe-ms 1000] [--run-ms 2000]`.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np
from _loadgen_util import print_calibration
from scipy import stats

from runner import registry
from runner.peak import run_peak_search
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store


def _ks(issued_ns: np.ndarray, qps: float) -> float:
    gaps = np.diff(np.sort(np.unique(issued_ns)))
    return float(stats.kstest(gaps, "expon", args=(0, 1e9 / qps)).pvalue) if len(gaps) > 10 else float("nan")


def _peak(store: Store, task: str, backend: str, variant: str, probe_ms: int) -> float | None:
    req = RunRequest(task, backend, "server", variant, quick=True,
                     scenario_settings={"min_duration_ms": probe_ms, "min_query_count": 256})
    search = run_peak_search(req, store, {"tolerance": 0.1, "repeats_near_edge": 1, "max_probes": 14})
    result = search.get("result") or {}
    if not result.get("peak_qps"):
        print(f"  {task}/{backend}/{variant}: peak search: {result.get('note')}; probes: "
              + ", ".join(f"{p['target_qps']:g} {'LIMIT' if p.get('inconclusive') else p['valid']}"
                          for p in result.get("probes", [])), flush=True)
    return result.get("peak_qps")


def _run(store: Store, task: str, backend: str, variant: str, qps: float, run_ms: int, loadgen: str,
         backend_settings: dict) -> dict:
    fields = registry.get("backend", backend).Settings.model_fields  # settings, not read-back properties
    settings = {k: v for k, v in backend_settings.items() if k in fields}
    req = RunRequest(task, backend, "server", variant, settings, quick=True, loadgen=loadgen,
                     scenario_settings={"target_qps": qps, "min_duration_ms": run_ms, "min_query_count": 512})
    run = store.get_run(execute_run(prepare_run(req), store))
    rec, s = store.read_perf_samples(run.id), run.summary or {}
    if loadgen == "mlperf":
        found = re.search(r"99.00 percentile latency \(ns\)\s*:\s*(\d+)", s.get("loadgen_summary", ""))
        p99 = int(found.group(1)) / 1e6 if found else None
    else:
        p99 = s.get("target_percentile_latency_ms")
    return {"validity": run.validity, "p99_ms": p99, "ks_p": _ks(rec["issued_ns"], qps),
            "late_p50_us": s.get("issue_delay_p50_us"), "late_p99_us": s.get("issue_delay_p99_us"),
            "tolerance_us": s.get("issue_delay_tolerance_us"), "issuer": s.get("issuer"),
            "backend": run.settings["backend"]}


def _fmt(v: float | None, spec: str) -> str:
    missing = v is None or (isinstance(v, float) and np.isnan(v))
    return f"{'-':>{spec.split('.')[0]}}" if missing else format(v, spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=None, help="default: every task with a server scenario")
    parser.add_argument("--backends", nargs="*", default=["onnxruntime", "openvino"])
    parser.add_argument("--variants", nargs="*", default=["fp32", "int8"])
    parser.add_argument("--fractions", nargs="*", type=float, default=[0.25, 0.5, 0.75])
    parser.add_argument("--probe-ms", type=int, default=1_000, help="min duration of each peak-search probe")
    parser.add_argument("--run-ms", type=int, default=2_000, help="min duration of each comparison run")
    parser.add_argument("--peak-qps", type=float, default=None,
                        help="take this as the peak instead of searching (e.g. when the machine is too loaded "
                             "for the search to find one)")
    args = parser.parse_args(argv)
    tasks = args.tasks or [t for t in registry.names("task") if "server" in registry.get("task", t)().card.scenarios]
    print_calibration()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "fidelity.db"))
        print(f"{'task/backend/variant':34} {'load':>5} {'QPS':>8}  {'loadgen':8} {'issuer':7} {'late p50':>9} "
              f"{'late p99':>9} {'tol':>6} {'KS p':>8} {'p99 ms':>8}  verdict")
        for task in tasks:
            for backend in args.backends:
                for variant in args.variants:
                    try:
                        rows += _config(store, task, backend, variant, args)
                    except Exception as exc:  # noqa: BLE001 - a configuration this machine cannot run is reported
                        print(f"{task}/{backend}/{variant}: skipped: {type(exc).__name__}: {exc}", flush=True)
        store.close()
    _table(rows)


def _config(store: Store, task: str, backend: str, variant: str, args: argparse.Namespace) -> list[dict]:
    name = f"{task}/{backend}/{variant}"
    peak = args.peak_qps or _peak(store, task, backend, variant, args.probe_ms)
    if not peak:
        print(f"{name:34} no VALID target QPS found", flush=True)
        return []
    print(f"{name:34} peak VALID target QPS ({'given' if args.peak_qps else 'searched, quick probes'}): {peak:,.0f}",
          flush=True)
    rows = []
    for fraction in args.fractions:
        qps = float(f"{fraction * peak:.4g}")
        ours = _run(store, task, backend, variant, qps, args.run_ms, "infersight", {})
        theirs = _run(store, task, backend, variant, qps, args.run_ms, "mlperf", ours["backend"])
        for label, r in (("ours", ours), ("LoadGen", theirs)):
            print(f"{name:34} {fraction:>5.0%} {qps:>8,.0f}  {label:8} {r['issuer'] or '-':7} "
                  f"{_fmt(r['late_p50_us'], '9.3g')} {_fmt(r['late_p99_us'], '9.3g')} "
                  f"{_fmt(r['tolerance_us'], '6.3g')} {_fmt(r['ks_p'], '8.3g')} {_fmt(r['p99_ms'], '8.4g')}  "
                  f"{r['validity']}", flush=True)
        rows.append({"name": name, "fraction": fraction, "qps": qps, "peak": peak, "ours": ours, "theirs": theirs,
                     "agree": _agree(ours["validity"], theirs["validity"])})
    return rows


def _agree(ours: str, theirs: str) -> str:
    """'agree', 'DISAGREE', or why there is no verdict of ours to compare (a load-generator limit)."""
    if ours == "LOADGEN_LIMIT":
        return "no verdict (ours: load-generator limit)"
    return "agree" if ours == theirs else "DISAGREE"


def _table(rows: list[dict]) -> None:
    """Per configuration and load: our lateness p99, our KS p, LoadGen's KS p, both verdicts, agreement."""
    print("\nsummary (lateness: issued - scheduled, ours only; KS: issued gaps against exponential(1 / QPS))")
    print(f"{'task/backend/variant':34} {'load':>5} {'QPS':>8} {'late p99 us':>11} {'KS p ours':>10} "
          f"{'KS p LoadGen':>12}  {'ours':13} {'LoadGen':8} verdicts")
    for r in rows:
        o, t = r["ours"], r["theirs"]
        print(f"{r['name']:34} {r['fraction']:>5.0%} {r['qps']:>8,.0f} {_fmt(o['late_p99_us'], '11.3g')} "
              f"{_fmt(o['ks_p'], '10.3g')} {_fmt(t['ks_p'], '12.3g')}  {o['validity']:13} {t['validity']:8} "
              f"{r['agree']}")
    decided = [r for r in rows if not r["agree"].startswith("no verdict")]
    worse = sum(r["ours"]["validity"] == "INVALID" and r["theirs"]["validity"] == "VALID" for r in rows)
    print(f"verdicts agree in {sum(r['agree'] == 'agree' for r in decided)} of {len(decided)} compared runs "
          f"({len(rows) - len(decided)} of ours a load-generator limit); ours INVALID where LoadGen VALID: {worse}")


if __name__ == "__main__":
    main()
