"""`infersight login URL`, `infersight submit RUN...` and `infersight sync`: results to and from a team server."""

from __future__ import annotations

import click

from infersight.cli._common import emit_json, err, json_option, out, with_store
from infersight.client import HttpRemote, Login, load_login, save_login
from runner.bundles import SyncResult, submit_runs, sync

__all__ = ["COMMANDS"]


def _server_options(fn):
    """--server URL and --ca-bundle PEM (both default to what `infersight login` saved)."""
    fn = click.option("--ca-bundle", default=None, type=click.Path(dir_okay=False),
                      help="PEM file of the CA that signed the server's TLS certificate (a private CA); "
                           "default: the one given to `infersight login`, else the system's CAs.")(fn)
    return click.option("--server", default=None, metavar="URL",
                        help="Team server (default: the one `infersight login` saved).")(fn)


@click.command("login")
@click.argument("url")
@click.option("--token", required=True, envvar="INFERSIGHT_TOKEN", metavar="TOKEN",
              help="API token from the server's admin (`infersight token create`); also $INFERSIGHT_TOKEN.")
@click.option("--ca-bundle", default=None, type=click.Path(exists=True, dir_okay=False),
              help="PEM file of the CA that signed the server's TLS certificate (a private CA).")
def login_cmd(url: str, token: str, ca_bundle: str | None) -> None:
    """Check TOKEN against the team server at URL and keep both for `submit` and `sync`.

    They are kept in a file only you can read (0600): $INFERSIGHT_CONFIG, else
    ~/.config/infersight/login.json. $INFERSIGHT_TOKEN, when set, is used instead of the saved token.

    \b
    Example:
        infersight login https://infersight.example.com --token isk_...
        infersight login https://10.0.0.5:8443 --token isk_... --ca-bundle team-ca.pem
    """
    login = Login(url.rstrip("/"), token, ca_bundle)
    with HttpRemote(login) as remote:
        remote.page(None, 1)  # refused (exit 2, nothing saved) when the token or the certificate is not good
    out.print(f"logged in to {login.url}; login kept in {save_login(login)}")


@click.command("submit")
@click.argument("runs", nargs=-1, required=True)
@_server_options
@json_option
@with_store
def submit_cmd(runs: tuple[str, ...], server: str | None, ca_bundle: str | None, as_json: bool, store) -> None:
    """Send the runs RUNS (ids, uuids or prefixes) with their four cards and two logs, as one run bundle,
    to the team server, which checks the bundle whole before storing anything.

    Submitting the same runs again stores nothing twice (the same runs make the same bundle, and the
    server keys bundles on their sha256); a failed connection is retried.

    \b
    Example:
        infersight submit 3 4
        infersight submit 3 --json
    """
    with HttpRemote(load_login(server, ca_bundle)) as remote:
        answer = submit_runs(store, remote, list(runs))
    if as_json:
        emit_json(answer)
        return
    sha = answer["bundle_sha256"][:12]
    if answer["received_before"]:
        out.print(f"run bundle {sha}: the server had it already; nothing stored twice")
    else:
        out.print(f"run bundle {sha}: the server stored {len(answer['imported'])} run(s), "
                  f"{len(answer['already_present'])} were there already")


@click.command("sync")
@click.option("--pull", is_flag=True, help="Only pull: fetch the runs others submitted (default: pull, then push).")
@click.option("--push", is_flag=True, help="Only push: send the runs measured with this store.")
@click.option("--page-size", default=50, show_default=True, type=click.IntRange(1, 500),
              help="Runs per page (one bundle each way); sync records where it stands after every page.")
@_server_options
@json_option
@with_store
def sync_cmd(pull: bool, push: bool, page_size: int, server: str | None, ca_bundle: str | None, as_json: bool,
             store) -> None:
    """Pull the runs others submitted to the team server into this store, and push the finished runs
    measured with this store (runs that came in bundles are their measurer's to push).

    Resumable: where sync stands with the server is kept in the store after every page, so an
    interrupted sync goes on where it stopped, and nothing is stored twice on either side.

    \b
    Example:
        infersight sync
        infersight sync --pull --json
    """
    pull, push = pull or not push, push or not pull  # neither flag: both ways
    with HttpRemote(load_login(server, ca_bundle)) as remote, err.status("syncing") as status:
        def progress(result: SyncResult) -> None:
            status.update(f"syncing with {result.server}: {result.pulled} pulled, {result.pushed} pushed")

        result = sync(store, remote, pull=pull, push=push, page_size=page_size, on_page=progress)
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(f"{result.server}: pulled {result.pulled} run(s), pushed {result.pushed} run(s) "
              f"in {result.bundles_sent} bundle(s)")


COMMANDS = [login_cmd, submit_cmd, sync_cmd]
