"""Submission and sync over real HTTPS: the API app on uvicorn on 127.0.0.1 in a subprocess over its own SQLite
store, its TLS certificate from a private CA (trustme), a client store beside it, the CLI's login / submit /
sync in-process with httpx. A bundle is checked whole before anything is stored (4xx problem details naming
the file otherwise), stored once by its sha256, and an upload cut half-way (the server killed, or the client
gone) and retried ends with one copy."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import _zips
import pytest
import trustme
from _api_server import REPO
from _postgres import free_port

from infersight.api.accounts import add_user, create_token, revoke_token
from infersight.cli import main
from infersight.client import BUNDLES_PATH, EXPORT_PATH
from runner.bundles import bundle_zip
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store

QUICK = {"min_duration_ms": 1, "min_query_count": 200, "warmup_duration_ms": 0}
MAX_BYTES = 400_000  # the server's bundle limit here, so an oversized bundle is cheap to make


def _measure(store: Store, n: int) -> list[str]:
    prep = prepare_run(RunRequest("digits", "null", "single_stream", scenario_settings=QUICK, quick=True))
    return [store.get_run(execute_run(prep, store)).uuid for _ in range(n)]


class TlsServer:
    """`uvicorn --factory infersight.api:create_app` over a store, with TLS; killed and started again on its
    port."""

    def __init__(self, db: Path, folder: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        self.ca_pem, self.key_pem, self.cert_pem = folder / "ca.pem", folder / "key.pem", folder / "cert.pem"
        ca.cert_pem.write_to_path(str(self.ca_pem))
        cert.private_key_pem.write_to_path(str(self.key_pem))
        cert.cert_chain_pems[0].write_to_path(str(self.cert_pem))
        self.db, self.log, self.port = db, folder / "server.log", free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90) -> None:
        env = {**os.environ, "INFERSIGHT_DB": str(self.db), "INFERSIGHT_MAX_BUNDLE_BYTES": str(MAX_BYTES),
               "PYTHONPATH": str(REPO)}
        with open(self.log, "ab") as sink:
            self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "infersight.api:create_app",
                                          "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                                          "--ssl-keyfile", str(self.key_pem), "--ssl-certfile", str(self.cert_pem)],
                                         env=env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited: {self.log.read_text()[-2000:]}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"nothing listens on {self.port} after {timeout_s} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, as a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(self.ca_pem)),
                            headers={"Authorization": f"Bearer {token}"}, timeout=120)


@pytest.fixture(scope="module")
def team(tmp_path_factory, digits_models):
    """A server store with 2 runs of host server-b and a viewer's and a submitter's token, served over TLS;
    a client store with 4 runs of host client-a."""
    root = tmp_path_factory.mktemp("team")
    with Store(str(root / "server.db")) as server_store:
        server_store.hostname = "server-b"
        theirs = _measure(server_store, 2)
        tokens = {}
        for role in ("viewer", "submitter"):
            add_user(server_store, role, role)
            tokens[role] = create_token(server_store, role)[1]
        revoked, tokens["revoked"] = create_token(server_store, "submitter")
        revoke_token(server_store, revoked["token_id"])
    with Store(str(root / "client.db")) as client:
        client.hostname = "client-a"
        mine = _measure(client, 4)
    server = TlsServer(root / "server.db", root)
    server.start()
    yield {"root": root, "server": server, "tokens": tokens, "theirs": theirs, "mine": mine}
    server.kill()


def _server_uuids(team) -> set[str]:
    with sqlite3.connect(team["root"] / "server.db") as conn:
        return {row[0] for row in conn.execute("SELECT uuid FROM runs")}


def _client_store(team) -> Store:
    store = Store(str(team["root"] / "client.db"))
    store.hostname = "client-a"
    return store


def _post(client: httpx.Client, data: bytes) -> httpx.Response:
    return client.post(BUNDLES_PATH, content=data, headers={"Content-Type": "application/zip"})


def test_submit_stores_the_runs_once_and_a_retry_stores_nothing(team):
    with _client_store(team) as client:
        data, sha = bundle_zip(client, team["mine"][:1])
    with team["server"].client(team["tokens"]["submitter"]) as http:
        first = _post(http, data)
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["bundle_sha256"] == sha and len(body["imported"]) == 1 and not body["received_before"]
        again = _post(http, data)
        assert again.status_code == 200 and again.json()["received_before"]
        assert again.json()["already_present"] == body["imported"]
        run = http.get(f"/api/v1/runs/{team['mine'][0]}").json()
        assert run["hostname"] == "client-a" and run["status"] == "complete"
    with team["server"].client(team["tokens"]["viewer"]) as http:
        refused = _post(http, data)
        assert refused.status_code == 403 and "bundles:submit" in refused.json()["detail"]


def _name(files: dict, end: str) -> str:
    return next(name for name in files if name.endswith(end))


def _missing_card(files):
    del files[_name(files, "cards/model.json")]


def _changed_card(files):  # a card changed: its bytes no longer have the manifest's sha256
    name = _name(files, "cards/system.json")
    files[name] = files[name].replace(b"{", b"{ ", 1)


def _escape(files):
    files["../../outside.txt"] = b"x"


def _oversized(files):
    files["padding.bin"] = os.urandom(500_000)  # incompressible: over the server's 400,000 bytes


@pytest.mark.parametrize("spoil, status, field, message", [
    (_missing_card, 422, "body.runs/", "cards/model.json: missing from the bundle"),
    (_changed_card, 422, "body.runs/", "differs from the manifest's"),
    (_escape, 422, "body", "unsafe name '../../outside.txt'"),
    (_oversized, 413, None, "over the 400000 bytes"),
])
def test_a_bad_bundle_is_a_4xx_problem_naming_it_and_stores_nothing(team, spoil, status, field, message):
    with _client_store(team) as client:
        data = _zips.spoil(bundle_zip(client, team["mine"][1:2])[0], spoil)
    before = _server_uuids(team)
    with team["server"].client(team["tokens"]["submitter"]) as http:
        response = _post(http, data)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert message in problem["detail"] and problem["status"] == status
    if field is not None:
        assert problem["errors"][0]["field"].startswith(field), problem
    assert _server_uuids(team) == before and team["mine"][1] not in before


def test_not_a_zip_and_bad_sync_parameters_are_4xx(team):
    with team["server"].client(team["tokens"]["submitter"]) as http:
        assert "not a zip archive" in _post(http, b'{"runs": []}').json()["detail"]
        assert http.get(BUNDLES_PATH, params={"after": "-1"}).json()["errors"][0]["field"] == "query.after"
        assert http.get(EXPORT_PATH).status_code == 422
        assert http.get(EXPORT_PATH, params={"run": "ffff0000"}).status_code == 404


def test_a_server_killed_mid_upload_stores_nothing_and_the_retry_stores_one_copy(team):
    with _client_store(team) as client:
        data = bundle_zip(client, team["mine"][2:3])[0]
    server = team["server"]

    def body():  # half the bundle, then the server dies before the rest is sent
        yield data[: len(data) // 2]
        server.kill()
        yield data[len(data) // 2:]

    with server.client(team["tokens"]["submitter"]) as http, pytest.raises(httpx.TransportError):
        http.post(BUNDLES_PATH, content=body(), headers={"Content-Type": "application/zip"})
    assert team["mine"][2] not in _server_uuids(team)
    server.start()  # the same store, the same port
    with server.client(team["tokens"]["submitter"]) as http:
        assert _post(http, data).status_code == 201
        assert _post(http, data).status_code == 200
    with sqlite3.connect(team["root"] / "server.db") as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE uuid = ?", (team["mine"][2],)).fetchone() == (1,)


def test_a_client_gone_before_the_answer_then_retrying_ends_with_one_copy(team):
    with _client_store(team) as client:
        data = bundle_zip(client, team["mine"][3:4])[0]
    token = team["tokens"]["submitter"]
    head = (f"POST {BUNDLES_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/zip\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    context = ssl.create_default_context(cafile=str(team["server"].ca_pem))
    with socket.create_connection(("127.0.0.1", team["server"].port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(head + data)  # the whole bundle sent, the connection cut before the answer
    with team["server"].client(token) as http:
        retried = _post(http, data)
        assert retried.status_code in (200, 201), retried.text  # stored by the first attempt, or by this one
        assert _post(http, data).status_code == 200
    with sqlite3.connect(team["root"] / "server.db") as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE uuid = ?", (team["mine"][3],)).fetchone() == (1,)


def _cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return exc.code or 0
    return 0


def test_login_submit_and_sync_from_the_command_line(team, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INFERSIGHT_CONFIG", str(tmp_path / "conf" / "login.json"))
    monkeypatch.delenv("INFERSIGHT_TOKEN", raising=False)
    url, token, ca = team["server"].url, team["tokens"]["submitter"], str(team["server"].ca_pem)
    assert _cli("login", url, "--token", token) == 2  # the server's CA is private: not trusted without it
    assert "--ca-bundle" in capsys.readouterr().err and not (tmp_path / "conf" / "login.json").exists()
    assert _cli("login", url, "--token", team["tokens"]["revoked"], "--ca-bundle", ca) == 2  # refused: not saved
    assert "401" in capsys.readouterr().err and not (tmp_path / "conf" / "login.json").exists()
    assert _cli("login", url, "--token", token, "--ca-bundle", ca) == 0
    assert "logged in" in capsys.readouterr().out
    saved = tmp_path / "conf" / "login.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and json.loads(saved.read_text())["token"] == token
    db = str(team["root"] / "sync-client.db")
    with Store(db) as local:
        mine = _measure(local, 2)
    assert _cli("submit", mine[0], "--db", db, "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["imported"]) == 1
    assert _cli("sync", "--db", db, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    server_runs = _server_uuids(team)
    assert result["pushed"] == 1 and result["pulled"] == len(server_runs) - 2  # all but its own two
    with Store(db) as local:
        assert {r.uuid for r in local.list_runs(limit=None)} == server_runs
    assert _cli("sync", "--pull", "--db", db, "--json") == 0
    assert json.loads(capsys.readouterr().out)["pulled"] == 0
    monkeypatch.setenv("INFERSIGHT_TOKEN", team["tokens"]["viewer"])  # overrides the saved token
    assert _cli("submit", mine[1], "--db", db) == 2
    assert "403" in capsys.readouterr().err
