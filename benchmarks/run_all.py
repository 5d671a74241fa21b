"""Run every benchmark of the foundation (on demand, never in `make test`): `make bench`.

(a) bench_loadgen: null backend, our runner vs MLCommons LoadGen (offline samples/s, single_stream queries/s)
(b) bench_onnxruntime: runner offline throughput on digits fp32 vs a bare onnxruntime loop
(c) bench_store: writing 1,000,000 per-query samples to the store vs plain sqlite3 executemany
(d) bench_backends: the fastest onnxruntime and OpenVINO configurations on digits offline vs bare library loops
(e) bench_sweep_isolation: start-up of a sweep cell in its own process vs in-process (issue: < 1 s)
(f) bench_multi_stream: multi_stream query latency on the null backend vs LoadGen's MultiStream; 1/2/4 streams
(g) bench_interactive: the interactive scenario's overhead per generated token on the null backend (issue: < 20 us)
(h) bench_charlm_stream: onnxruntime run_stream on charlm fp32 vs a bare onnxruntime prefill + decode loop (us/token)
(i) bench_server: null-backend peak VALID QPS at a 15 ms p99 bound vs LoadGen's; Poisson fidelity (KS) at 10k QPS
(j) bench_engine: engine.recommend over 100,000 candidates vs a pandas filter + sort (issue: p95 < 100 ms)
(k) bench_analysis: percentile CIs of 10M samples vs np.percentile (issue: < 1 s); a full analysis of a
    1,000-run, 10M-sample store vs reading its records (issue: < 10 s)
(l) bench_reports: the quarterly trend report over 10,000 runs vs the run report of a 100,000-query run
    (issue: < 10 s, < 5 MB)
(m) bench_app: the Streamlit Recommend page's re-render (AppTest) vs the bare engine.recommend call (issue: < 1 s)
(n) bench_bundles: exporting and importing a run bundle of a 100,000-query run (folder, zip, tar.gz) vs the bare
    store copy of its records
(n) bench_ocr: runner offline throughput on the real ocr task (PP-OCRv4) vs its pipeline on bare onnxruntime
    sessions over the same batches (issue: >= 0.97)
(n) bench_fidelity: digits and charlm server at 25/50/75% of peak QPS, ours beside LoadGen: lateness, KS p,
    p99 latency and verdicts
(o) bench_issuer_spin: the issuer's spin rule on a simulated clock: lateness, KS p and CPU per 1k QPS against
    the earlier, longer spin
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for name in ("bench_loadgen", "bench_onnxruntime", "bench_store", "bench_loadgen_mode", "bench_backends",
             "bench_sweep_isolation", "bench_multi_stream", "bench_interactive",
             "bench_charlm_stream", "bench_server", "bench_engine", "bench_analysis", "bench_reports",
             "bench_app", "bench_bundles", "bench_ocr", "bench_fidelity", "bench_issuer_spin"):
    print(f"\n== {name} ==", flush=True)
    sys.argv = [name]
    runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")
