"""The REST API over real HTTP: `infersight serve` in a subprocess on loopback, httpx as the client, the store
on SQLite (a copy of the app's fixture store: MLPerf v4.1 results and quick digits runs) and on PostgreSQL."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timezone

import pytest

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
        runs = store.list_runs(limit=None, provenance=True)
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


def _path(template: str, run_id: int) -> str:
    return template.replace("{run_ref}", str(run_id)).replace("{name}", "digits")


def test_every_endpoint_checks_the_permission_table_for_every_role(sqlite_api):
    routes = endpoint_actions()
    assert routes and None not in routes.values(), f"endpoints without exactly one require(): {routes}"
    server, tokens, run_id = sqlite_api["server"], sqlite_api["tokens"], sqlite_api["ids"]["fp32"][0]
    for (method, template), action in sorted(routes.items()):
        for who in (*ROLES, None, "bad", "expired", "revoked"):
            with server.client(None if who is None else tokens[who]) as client:
                response = client.request(method, _path(template, run_id))
            if who not in ROLES:
                body = _problem(response, 401)
                assert response.headers["www-authenticate"] == "Bearer"
                assert (who or "no bearer token") in body["detail"] or who == "bad", body
            elif who in PERMISSIONS[action]:
                assert response.status_code not in (401, 403), (method, template, who, response.text)
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
        stored = store.get_run(run_id)
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
        runs = store.list_runs(limit=None)
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
