"""schemathesis over every endpoint of the REST API, at least 100 examples each: how many server errors.

Run: .venv/bin/python benchmarks/fuzz_api.py [--examples 100] [--seed 1] [-- SCHEMATHESIS_OPTIONS...]
(e.g. `-- --include-path /api/v1/export/runs` to fuzz one endpoint)

A fresh SQLite store gets the MLPerf v4.1 results of ../shared (imported) and three quick digits runs
(fp32 offline twice, int8 offline), an admin token, and `infersight serve` on 127.0.0.1 in a subprocess.
Then the schemathesis CLI runs its examples, coverage and fuzzing phases over the served OpenAPI schema
with every check but positive_data_acceptance (a valid question about data the store lacks, such as a
task with no runs, is a 422 problem, not a 2xx); its summary is printed, and the server log is searched
for tracebacks. Exit status: schemathesis's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from _api_server import ApiServer  # noqa: E402
from infersight.api.accounts import add_user, create_token  # noqa: E402
from runner.store import Store  # noqa: E402

MLPERF = REPO.parent / "shared/data/mlperf/v4.1"


def fill(store: Store) -> None:
    """The MLPerf v4.1 results and three quick digits runs."""
    from runner.importers import import_tree
    from runner.run import RunRequest, execute_run, prepare_run

    import_tree(store, MLPERF)
    for variant in ("fp32", "fp32", "int8"):
        execute_run(prepare_run(RunRequest("digits", scenario="offline", model_variant=variant, quick=True)), store)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="more options for `schemathesis run`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "fuzz.db")
        with Store(db) as store:
            fill(store)
            add_user(store, "fuzz", "admin")
            token = create_token(store, "fuzz")[1]
        server = ApiServer(db, Path(folder) / "server.log")
        try:
            code = subprocess.run([str(Path(sys.executable).parent / "schemathesis"), "run",
                                   f"{server.base_url}/openapi.json", "-H", f"Authorization: Bearer {token}",
                                   "--checks", "all", "--exclude-checks", "positive_data_acceptance",
                                   "--max-examples", str(args.examples), "--seed", str(args.seed), "-w", "1",
                                   "--no-color", *args.extra], env={**os.environ, "NO_COLOR": "1"},
                                  cwd=folder).returncode  # its .schemathesis cache goes to the temporary folder
        finally:
            server.stop()
        log = (Path(folder) / "server.log").read_text()
        print(f"server log: {log.count('Traceback')} tracebacks, {log.count('unexpected error')} unexpected errors")
        return code


if __name__ == "__main__":
    sys.exit(main())
