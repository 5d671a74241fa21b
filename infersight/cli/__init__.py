"""The `infersight` command line. Each command is thin: parse, call the runner, print."""

from __future__ import annotations

import os
import signal
import sys
import threading


def _interrupted_at_start_up(signum: int, frame: object) -> None:
    """Ctrl-C while the CLI is still importing: leave at once and quietly (nothing was written yet). The
    process ends here rather than raising: an import that swallows exceptions (a bare except in a
    library) would otherwise carry on, and the command with it."""
    os.write(2, b"interrupted during start-up; nothing was written\n")
    os._exit(130)


_MAIN_THREAD = threading.current_thread() is threading.main_thread()
_PREVIOUS_SIGINT = signal.signal(signal.SIGINT, _interrupted_at_start_up) if _MAIN_THREAD else None

# the imports below take a moment: Ctrl-C in them must not print a traceback
import importlib  # noqa: E402

import click  # noqa: E402
from rich.text import Text  # noqa: E402

from infersight import __version__  # noqa: E402
from infersight.cli._common import err  # noqa: E402
from runner import interrupts  # noqa: E402
from runner.errors import InfersightError  # noqa: E402

__all__ = ["cli", "main", "COMMAND_MODULES"]

# Each command and the module of infersight/cli that defines it (in its COMMANDS list). A command's module is
# imported only when that command runs (or help lists it): `infersight runs` does not pay for scipy,
# onnx and FastAPI. tests/test_cli.py checks this table against every module's COMMANDS.
COMMAND_MODULES: dict[str, str] = {
    "run": "measure", "build": "measure", "peak": "peak", "runs": "inspect", "show": "inspect",
    "validate": "inspect", "plugins": "catalog", "tasks": "catalog", "system": "catalog", "import": "interop",
    "export": "interop", "sweep": "sweep", "report": "report", "badge": "report", "recommend": "recommend",
    "analyze": "analyze", "compare": "analyze", "repro": "analyze", "trend": "analyze", "task": "usertask",
    "serve": "server", "user": "server", "token": "server", "login": "team", "submit": "team", "sync": "team",
}

if _MAIN_THREAD:
    signal.signal(signal.SIGINT, _PREVIOUS_SIGINT)


class _LazyGroup(click.Group):
    """A group whose commands are imported from their module when first asked for (COMMAND_MODULES)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMAND_MODULES:
            return None
        module = importlib.import_module(f"infersight.cli.{COMMAND_MODULES[name]}")
        return next(command for command in module.COMMANDS if command.name == name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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



def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one message and exit 2; Ctrl-C (or SIGTERM) prints one line, exits 130.

    Called with no arguments it is the process's own entry point, and Ctrl-C after the command, while
    the interpreter shuts down, ends the process quietly too.
    """
    try:
        with interrupts.watched():  # remembered: a run started later aborts even if a library swallowed it
            code = cli.main(args=argv, prog_name="infersight", standalone_mode=False)
    except InfersightError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):  # click turns Ctrl-C into Abort
        err.print("interrupted: a run that had started is marked aborted, with what was measured kept")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _interrupted_at_exit)
    if isinstance(code, int) and code:
        sys.exit(code)


def _interrupted_at_exit(signum: int, frame: object) -> None:
    """Ctrl-C while the process exits after its command: end it at once, output flushed, no traceback."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream: nothing more can be said on it
            pass
    os.write(2, b"interrupted while exiting, after the command had finished\n")
    os._exit(130)
