"""The `infersight` command line. Each command is thin: parse, call the runner, print."""

from __future__ import annotations

import signal
import sys
import threading


def _interrupted_at_start_up(signum: int, frame: object) -> None:
    """Ctrl-C while the CLI is still importing: leave quietly (nothing was written yet)."""
    sys.stderr.write("interrupted during start-up; nothing was written\n")
    raise SystemExit(130)


_MAIN_THREAD = threading.current_thread() is threading.main_thread()
_PREVIOUS_SIGINT = signal.signal(signal.SIGINT, _interrupted_at_start_up) if _MAIN_THREAD else None

# the imports below take a second: Ctrl-C in them must not print a traceback
import click  # noqa: E402
from rich.text import Text  # noqa: E402

from infersight import __version__  # noqa: E402
from infersight.cli import (analyze, catalog, inspect, interop, measure, recommend, report, server, sweep,  # noqa: E402
                            usertask)
from infersight.cli._common import err  # noqa: E402
from runner.errors import InfersightError  # noqa: E402

__all__ = ["cli", "main"]

if _MAIN_THREAD:
    signal.signal(signal.SIGINT, _PREVIOUS_SIGINT)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="infersight")
def cli() -> None:
    """infersight: measure inference tasks on backends under MLPerf-style scenarios, and keep
    every measurement with its provenance.

    \b
    Example:
        infersight run digits --backend onnxruntime --scenario offline
        infersight runs
        infersight show 1
    """


for module in (measure, inspect, catalog, interop, sweep, report, recommend, analyze, usertask, server):
    for command in module.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one message and exit 2; Ctrl-C exits 130."""
    try:
        code = cli.main(args=argv, prog_name="infersight", standalone_mode=False)
    except InfersightError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted: a run that had started is marked aborted, with what was measured kept")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
