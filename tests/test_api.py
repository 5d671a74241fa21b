"""The REST API over real HTTP: `infersight serve` in a subprocess on loopback, httpx as the client, the store
on SQLite (a copy of the app's fixture store: MLPerf v4.1 results and quick digits runs) and on PostgreSQL."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timezone
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from _api_server import ApiServer, accounts, sqlite_copy
from _postgres import _sql
from infersight.api.app import endpoint_actions
from infersight.api.permissions import PERMISSIONS, ROLES
from runner.store import Store

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def sqlite_api(app_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    db = sqlite_copy(app_db["db"], folder / "api.db")
    with Store(str(db)) as store:
        tokens = accounts(store)
        runs = [r.to_dict() for r in store.list_runs(limit=None, provenance=True)]
    server = ApiServer(str(db), folder / "server.log")
    yield {"server": server, "tokens": tokens, "runs": runs, "db": str(db), "ids": app_db}
    server.stop()


def _problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["detail"] and body["instance"] == response.request.url.path
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def _probe(client, method: str, template: str):
    """A request that passes authorisation and then fails validation (a bad path parameter, an unknown query
    parameter, no body) where the endpoint takes any input: the handler's work is not what is checked here."""
    path = template.replace("{run_ref}", "!!").replace("{name}", "!!")
    return client.request(method, path, params={"zz": "1"} if method == "GET" else None)


def test_every_endpoint_checks_the_permission_table_for_every_role(sqlite_api):
    routes = endpoint_actions()
    assert routes and None not in routes.values(), f"endpoints without exactly one require(): {routes}"
    server, tokens = sqlite_api["server"], sqlite_api["tokens"]
    for who in (*ROLES, None, "bad", "expired", "revoked"):
        with server.client(None if who is None else tokens[who]) as client:
            for (method, template), action in sorted(routes.items()):
                _check_permission(_probe(client, method, template), who, action)


def _check_permission(response, who: str | None, action: str) -> None:
    if who not in ROLES:
        body = _problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert (who or "no bearer token") in body["detail"] or who == "bad", body
    elif who in PERMISSIONS[action]:
        assert response.status_code in (200, 422), (response.request.url, who, response.text)
    else:
        assert action in _problem(response, 403)["detail"]


def test_a_scoped_token_may_use_only_its_scopes(sqlite_api):
    with sqlite_api["server"].client(sqlite_api["tokens"]["scoped"]) as client:
        assert client.get("/api/v1/runs", params={"limit": 1}).status_code == 200
        assert "not scoped" in _problem(client.get("/api/v1/me"), 403)["detail"]


def test_who_am_i_lists_what_the_token_may_do(sqlite_api):
    with sqlite_api["server"].client(sqlite_api["tokens"]["submitter"]) as client:
        me = client.get("/api/v1/me").json()
    assert me["user"] == "submitter-user" and me["role"] == "submitter" and me["scopes"] is None
    assert me["actions"] == [a for a, roles in PERMISSIONS.items() if "submitter" in roles]


def test_bad_input_is_a_problem_naming_the_field(sqlite_api):
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        _problem(client.get("/api/v1/runs", params={"colour": "red"}), 422, "query.colour")
        _problem(client.get("/api/v1/runs", params={"limit": "many"}), 422, "query.limit")
        _problem(client.get("/api/v1/runs", params={"limit": 5000}), 422, "query.limit")
        _problem(client.get("/api/v1/runs", params={"status": "done"}), 422, "query.status")
        _problem(client.get("/api/v1/runs", params={"started_after": "last week"}), 422, "query.started_after")
        _problem(client.get("/api/v1/runs", params={"cursor": "bm90IGEgY3Vyc29y"}), 422, "query.cursor")
        assert "no run 'ffffffff'" in _problem(client.get("/api/v1/runs/ffffffff"), 404)["detail"]
        _problem(client.get("/api/v1/runs/99999999999999999999999"), 404)
        big = b"{" + b" " * (2 << 20) + b"}"
        assert "limit" in _problem(client.post("/api/v1/me", content=big), 413)["detail"]


def _walk(client, **params) -> list[dict]:
    seen, cursor = [], None
    for _ in range(1000):
        page = client.get("/api/v1/runs", params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        seen += page.json()["runs"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


def _sort_key(run: dict, column: str):
    value = run[column]
    if isinstance(value, datetime):
        value = value.isoformat().replace("+00:00", "Z")
    return value


def _check_walk(client, runs: list[dict], column: str, order: str) -> None:
    got = _walk(client, sort=column, order=order, limit=4)
    assert sorted(r["id"] for r in got) == sorted(r["id"] for r in runs)  # every run once
    present = [r for r in runs if r[column] is not None]
    expected = sorted(present, key=lambda r: (_value(r[column]), r["id"]), reverse=order == "desc")
    expected += sorted((r for r in runs if r[column] is None), key=lambda r: r["id"], reverse=order == "desc")
    assert [r["id"] for r in got] == [r["id"] for r in expected]


def _value(value):
    return value.timestamp() if isinstance(value, datetime) else value


def test_pages_of_runs_hold_every_run_once_in_order(sqlite_api):
    runs = sqlite_api["runs"]
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        for column, order in itertools.product(("started_at", "headline_value"), ("asc", "desc")):
            _check_walk(client, runs, column, order)


def test_run_filters_match_the_stores_own(sqlite_api):
    runs, ids = sqlite_api["runs"], sqlite_api["ids"]
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        def ids_of(**params):
            return sorted(r["id"] for r in _walk(client, limit=1000, **params))
        assert ids_of(task="digits", scenario="offline") == sorted(ids["fp32"] + ids["int8"])
        assert ids_of(source="mlperf") == sorted(r["id"] for r in runs if r.get("imported"))
        assert ids_of(source="measured", scenario="single_stream") == [ids["single_stream"]]
        quarter = ids_of(task="digits", started_after="2025-04-01T00:00:00", started_before="2025-07-01T00:00:00Z")
        assert quarter == [ids["fp32"][1]]
        system = client.get(f"/api/v1/runs/{ids['int8'][0]}").json()["cards"]["system"]
        name = client.get("/api/v1/runs", params={"limit": 1, "task": "digits"}).json()["runs"][0]["system"]
        assert ids_of(system=name, task="digits") == sorted(ids["fp32"] + ids["int8"] + [ids["single_stream"]])
        assert system["card"] is not None and ids_of(system="no such system") == []


def test_one_run_has_its_cards_and_summary(sqlite_api):
    run_id = sqlite_api["ids"]["int8"][0]
    with Store(sqlite_api["db"]) as store:
        stored = store.get_run(run_id).to_dict()
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        by_prefix = client.get(f"/api/v1/runs/{stored['uuid'][:8]}").json()
    assert by_prefix["id"] == run_id and by_prefix["summary"] == stored["summary"]
    assert {kind: c["hash"] for kind, c in by_prefix["cards"].items()} == {
        kind: stored[f"{kind}_hash"] for kind in ("task", "model", "backend", "system")}
    assert by_prefix["cards"]["model"]["card"]["variant"] == "int8" or "int8" in str(by_prefix["cards"]["model"])


@pytest.fixture(scope="module")
def pg_api(pg_url, app_db, tmp_path_factory):
    from runner.bundles.export import export_bundle
    from runner.bundles.importer import import_bundle
    from sqlalchemy.engine import make_url

    name = f"api_{secrets.token_hex(4)}"
    _sql(pg_url, f'CREATE DATABASE "{name}"')
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    folder = tmp_path_factory.mktemp("api-pg")
    with Store(str(app_db["db"])) as source:
        export_bundle(source, [*app_db["fp32"], *app_db["int8"]], folder / "runs.zip")
    with Store(url) as store:
        import_bundle(store, folder / "runs.zip")
        tokens = accounts(store)
        runs = [r.to_dict() for r in store.list_runs(limit=None)]
    server = ApiServer(url, folder / "server.log")
    yield {"server": server, "tokens": tokens, "runs": runs}
    server.stop()
    _sql(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_runs_query_on_postgresql(pg_api):
    runs = pg_api["runs"]
    assert len(runs) == 6
    with pg_api["server"].client(pg_api["tokens"]["viewer"]) as client:
        for column, order in (("started_at", "desc"), ("headline_value", "asc")):
            _check_walk(client, runs, column, order)
        one = client.get(f"/api/v1/runs/{runs[0]['uuid']}").json()
        assert one["id"] == runs[0]["id"] and set(one["cards"]) == {"task", "model", "backend", "system"}
        _problem(client.get("/api/v1/runs/424242"), 404)
    with pg_api["server"].client(pg_api["tokens"]["revoked"]) as client:
        assert "revoked" in _problem(client.get("/api/v1/runs"), 401)["detail"]
    with pg_api["server"].client(pg_api["tokens"]["viewer"]) as client:
        after = datetime(2025, 4, 1, tzinfo=timezone.utc)
        late = [r["id"] for r in _walk(client, started_after=after.isoformat(), limit=2)]
    assert sorted(late) == sorted(r["id"] for r in runs if r["started_at"] >= after)


def test_bad_bodies_are_problems_naming_the_field(sqlite_api):
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        body = _problem(client.post("/api/v1/compare", content=b'{"refs": ["1", ', headers={
            "content-type": "application/json"}), 422, "body")
        assert "malformed JSON" in body["errors"][0]["detail"]
        _problem(client.post("/api/v1/compare", json={"refs": ["1", "2"], "colour": "red"}), 422, "body.colour")
        _problem(client.post("/api/v1/compare", json={"refs": ["1", "2"], "margin": "wide"}), 422, "body.margin")
        _problem(client.post("/api/v1/compare", json={"refs": ["1"]}), 422, "body.refs")
        _problem(client.post("/api/v1/recommend", json={"task": "digits", "scenario": "offline",
                                                        "bounds": {"max_p99_ms": "fast"}}), 422,
                 "body.bounds.max_p99_ms")
        _problem(client.post("/api/v1/compare", content=iter([b" " * (1 << 19)] * 4)), 413)  # chunked, no length
        assert "no run" in _problem(client.post("/api/v1/compare", json={"refs": ["424242", "1"]}), 404)["detail"]
        _problem(client.get("/api/v1/tasks/no-such-task"), 404)
        _problem(client.get("/api/v1/reports/trend", params={"quarter": "2025Q5"}), 422, "query.quarter")
        _problem(client.get("/api/v1/reports/trend"), 422)


def _parquet(data: bytes):
    import io

    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pandas()


def test_exports_are_the_clis_tables_and_files(sqlite_api, tmp_path):
    import io
    import zipfile

    import pandas as pd

    from reports.export import runs_table
    from runner.bundles.importer import import_bundle

    ids = sqlite_api["ids"]
    with Store(sqlite_api["db"]) as store:
        table = runs_table(store, "digits", limit=None)
        perf = store.read_perf_samples(ids["int8"][0])
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        csv = client.get("/api/v1/export/runs", params={"task": "digits", "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert list(pd.read_csv(io.StringIO(csv.text))["uuid"]) == list(table["uuid"])
        parquet = client.get("/api/v1/export/runs", params={"task": "digits", "format": "parquet"})
        assert list(_parquet(parquet.content)["id"]) == list(table["id"])
        every = client.get("/api/v1/export/runs", params={"format": "parquet"})  # MLPerf's "32" cores beside ints
        assert len(_parquet(every.content)) == len(sqlite_api["runs"])
        assert [r["id"] for r in client.get("/api/v1/export/runs", params={"format": "json", "task": "digits"}
                                            ).json()] == list(table["id"])
        queries = _parquet(client.get(f"/api/v1/runs/{ids['int8'][0]}/queries.parquet").content)
        assert list(queries["completed_ns"]) == list(perf["completed_ns"]) and "latency_ms" in queries
        mlperf_run = next(r["id"] for r in sqlite_api["runs"] if r.get("imported"))
        _problem(client.get(f"/api/v1/runs/{mlperf_run}/queries.parquet"), 422)
        logs = zipfile.ZipFile(io.BytesIO(client.get(f"/api/v1/runs/{ids['int8'][0]}/mlperf.zip").content))
        assert any(n.endswith("performance/run_1/mlperf_log_summary.txt") for n in logs.namelist())
        bundle = client.get("/api/v1/export/bundle", params={"run": [ids["fp32"][0], ids["int8"][0]]})
    assert bundle.headers["content-type"] == "application/zip"
    (tmp_path / "runs.zip").write_bytes(bundle.content)
    with Store(str(tmp_path / "other.db")) as other:
        import_bundle(other, tmp_path / "runs.zip")
        assert {r.id for r in other.list_runs()} and {r.uuid for r in other.list_runs()} == {
            r["uuid"] for r in sqlite_api["runs"] if r["id"] in (ids["fp32"][0], ids["int8"][0])}


def test_analyses_are_the_clis_answers(sqlite_api):
    from analysis import services
    from infersight.api.models import plain

    ids = sqlite_api["ids"]
    with Store(sqlite_api["db"]) as store:
        analysed = plain(services.analyse(services.AnalyseRequest.parse(run=str(ids["int8"][0])), store).to_dict())
        pair = services.CompareRequest.parse(refs=[str(ids["fp32"][0]), str(ids["fp32"][1])])
        compared = plain(services.compare(pair, store).to_dict())
        trends = plain(services.trend(services.TrendRequest.parse(task="digits"), store).to_dict())
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        assert client.get(f"/api/v1/runs/{ids['int8'][0]}/analysis").json() == analysed
        assert client.post("/api/v1/compare", json={"refs": [str(ids["fp32"][0]), str(ids["fp32"][1])]}
                           ).json() == compared
        assert client.get("/api/v1/trend", params={"task": "digits"}).json() == trends
        rec = client.post("/api/v1/recommend", json={"task": "digits", "scenario": "offline",
                                                     "objective": "throughput"}).json()
    assert rec["task"] == "digits" and rec["candidates"] >= 2 and rec["catalog_is_example"] is True
    assert rec["ranked"] and {"rank"} <= set(rec["ranked"][0])


def test_reports_are_html_documents(sqlite_api):
    ids = sqlite_api["ids"]
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        pages = [client.get(f"/api/v1/reports/run/{ids['int8'][0]}"),
                 client.post("/api/v1/reports/compare", json={"refs": [str(ids["fp32"][0]), str(ids["int8"][0])],
                                                              "force": True}),
                 client.post("/api/v1/reports/decision", json={"task": "digits", "scenario": "offline",
                                                               "objective": "throughput"}),
                 client.get("/api/v1/reports/trend", params={"quarter": "2025Q4", "task": "digits"}),
                 client.get("/api/v1/reports/trend", params={"source": "mlperf", "task": "resnet50"})]
    for page in pages:
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html") and page.text.lstrip().startswith("<!")


def test_tasks_list_and_show(sqlite_api):
    with sqlite_api["server"].client(sqlite_api["tokens"]["viewer"]) as client:
        names = [t["name"] for t in client.get("/api/v1/tasks").json()]
        digits = client.get("/api/v1/tasks/digits").json()
    assert {"digits", "charlm"} <= set(names)
    assert digits["card"]["metadata"]["name"] == "digits" and digits["variants"]["fp32"] == "built"


def test_schemathesis_finds_no_server_error_nor_undocumented_answer(sqlite_api):
    """Every endpoint, valid and invalid requests drawn from the OpenAPI schema, every check but
    positive_data_acceptance: a valid question about data the store lacks (a task without runs) is a 422
    problem, not a 2xx. A few examples each here; benchmarks/fuzz_api.py runs >= 100 per endpoint."""
    schema = schemathesis.openapi.from_url(f"{sqlite_api['server'].base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {sqlite_api['tokens']['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(endpoint_actions())
    schemathesis.serializer.alias("application/zip", "application/octet-stream")  # bundle uploads
    for operation in operations:
        starts_work = operation.method.upper() == "POST" and operation.path == "/api/v1/jobs"
        # valid job requests would start real measurements beside the rest of the suite: only invalid ones here
        for mode in (GenerationMode.NEGATIVE,) if starts_work else (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=3, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case):
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
            check()


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    from infersight.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def test_user_and_token_commands(tmp_path, capsys):
    import json

    from infersight.api.accounts import Unauthenticated, authenticate

    db = str(tmp_path / "team.db")
    assert _cli(capsys, "user", "add", "ana", "--role", "viewer", "--db", db)[0] == 0
    code, _, err = _cli(capsys, "user", "add", "ana", "--role", "admin", "--db", db)
    assert code == 2 and "user 'ana' exists already" in err
    code, _, err = _cli(capsys, "user", "add", "bob", "--role", "boss", "--db", db)
    assert code == 2 and "'boss' is not one of" in err
    code, _, err = _cli(capsys, "token", "create", "ana", "--scope", "accounts:admin", "--db", db)
    assert code == 2 and "a viewer may:" in err
    code, _, err = _cli(capsys, "token", "create", "nobody", "--db", db)
    assert code == 2 and "no user 'nobody'" in err and "ana" in err
    code, out, _ = _cli(capsys, "token", "create", "ana", "--scope", "runs:read", "--days", "2", "--json", "--db", db)
    made = json.loads(out)
    listed = json.loads(_cli(capsys, "token", "list", "--json", "--db", db)[1])
    assert [t["token_id"] for t in listed] == [made["token_id"]] and listed[0]["state"] == "active"
    assert "secret_hash" not in listed[0] and "token" not in listed[0] and made["token"] not in str(listed)
    with Store(db) as store:
        principal = authenticate(store, made["token"])
        assert (principal.user, principal.role, principal.scopes) == ("ana", "viewer", frozenset({"runs:read"}))
        stored = str(store.engine.connect().exec_driver_sql("SELECT * FROM api_tokens").all())
        assert made["token"].rsplit("_", 1)[-1] not in stored and "$argon2id$" in stored
    code, out, _ = _cli(capsys, "token", "revoke", made["token_id"], "--db", db)
    assert code == 0 and "revoked" in out
    with Store(db) as store, pytest.raises(Unauthenticated, match="revoked"):
        authenticate(store, made["token"])


def test_the_readme_permission_table_is_the_codes():
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("| action | viewer | submitter | reviewer | admin |"):].split("\n\n")[0]
    documented = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for action in re.findall(r"`([^`]+)`", cells[0]):
            documented[action] = {role for role, cell in zip(ROLES, cells[1:]) if cell == "yes"}
    assert documented == {action: set(roles) for action, roles in PERMISSIONS.items()}
