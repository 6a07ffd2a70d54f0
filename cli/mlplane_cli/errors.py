"""The CLI's one place for errors: whatever a command raises reaches the user as one line and an exit status.

Exit 2: a usage or input error the user can fix on the command line (a bad option, a bad file, an unknown AWS
profile). Exit 1: AWS refused or could not be reached, or the outcome was a failure. Never a traceback: an
unexpected exception is one line too, naming its type.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from typer._click import exceptions as click_errors  # typer vendors click: its exceptions, not click's
from typer.core import TyperGroup

USAGE = 2
FAILURE = 1


def one_line(message: object) -> str:
    return " ".join(str(message).split())


def fail(message: str, code: int = USAGE) -> typer.Exit:
    """Print one line on stderr and give the exit to raise."""
    sys.stderr.write(f"mlplane: {one_line(message)}\n")
    return typer.Exit(code)


def describe(err: BaseException) -> tuple[str, int]:
    """The one line and the exit status for an exception a command did not handle itself."""
    for kinds, code, say in _rules():
        if isinstance(err, kinds):
            return say(err), code
    if _is_sandbox_usage_error(err):
        return str(err), USAGE
    return f"unexpected error: {type(err).__name__}: {err}", FAILURE


def _rules() -> list[tuple[tuple[type[BaseException], ...], int, Callable[[Any], str]]]:
    """First match wins: (exception types, exit status, the line)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    from mlplane.errors import ConfigError, InputRejected, MlplaneError, translate

    return [
        # The user named the profile (--profile or AWS_PROFILE): an input error.
        (
            (ProfileNotFound,),
            USAGE,
            lambda e: f"AWS profile {e.kwargs.get('profile')!r} is not in the AWS config (--profile, AWS_PROFILE)",
        ),
        ((NoRegionError,), USAGE, lambda e: "no AWS region: pass --region or set AWS_REGION"),
        (
            (NoCredentialsError, PartialCredentialsError),
            FAILURE,
            lambda e: f"AWS: {e} (set AWS_PROFILE or pass --profile, or export credentials)",
        ),
        ((BotoCoreError,), FAILURE, lambda e: f"AWS: {e}"),
        ((ClientError,), FAILURE, lambda e: str(translate(e, str(e.operation_name)))),
        ((InputRejected, ConfigError), USAGE, str),
        ((MlplaneError,), FAILURE, str),
        (
            (FileNotFoundError, IsADirectoryError, PermissionError),
            USAGE,
            lambda e: f"{e.filename}: cannot read: {e.strerror}",
        ),
        ((BrokenPipeError,), FAILURE, lambda e: "output closed early"),
    ]


def _is_sandbox_usage_error(err: BaseException) -> bool:
    runner = sys.modules.get("mlplane_sandbox.runner")  # only a command that ran the sandbox can raise it
    return runner is not None and isinstance(err, runner.UsageError)


class OneLineErrors(TyperGroup):
    """The root command group: usage errors and uncaught exceptions become one line on stderr."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as err:  # `mlplane` or `mlplane local` alone: the help
            sys.stdout.write(err.ctx.get_help() + "\n")
            code = USAGE
        except click_errors.UsageError as err:
            path = err.ctx.command_path if err.ctx else "mlplane"
            where = path.partition(" ")[2]  # the subcommand, after the program's name
            line = f"{where}: {err.format_message()}" if where else err.format_message()
            sys.stderr.write(f"mlplane: {one_line(line)} (see '{path} --help')\n")
            code = err.exit_code
        except click_errors.ClickException as err:
            sys.stderr.write(f"mlplane: {one_line(err.format_message())}\n")
            code = err.exit_code
        except typer.Abort:
            sys.stderr.write("mlplane: aborted\n")
            code = FAILURE
        except Exception as err:
            message, code = describe(err)
            sys.stderr.write(f"mlplane: {one_line(message)}\n")
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)
