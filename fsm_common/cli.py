"""What both command-line programs share: error rendering, exit codes, JSON output."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fsm_protocol.display import CELL_CHARS, display_text, shorten
from fsm_protocol.errors import FsmError, OutputError

from .configfile import ConfigChoice, locate

F = TypeVar("F", bound=Callable[..., Any])


class FsmGroup(click.Group):
    """A click group that turns every FsmError into `error:` and `hint:` lines and an exit code.

    Exit codes: 1 a failed operation, 2 a usage error (click's), 3 bad config or failed start-up.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FsmError as exc:
            fail(ctx, exc)


def fail(ctx: click.Context, exc: FsmError) -> None:
    """End the program with ``exc`` as `error:` and `hint:` lines on stderr and its exit code."""
    click.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)
    ctx.exit(exc.exit_code)


def open_context(
    ctx: click.Context,
    config_path: str | None,
    data_dir: str | None,
    *,
    config_env: str,
    search: Sequence[str],
    data_dir_env: str,
    make: Callable[[ConfigChoice, str | None, str], object],
) -> None:
    """What the group of each program does before any command: choose the config file, and put
    the context ``make`` builds from it (and ``--data-dir``) into ``ctx.obj``."""
    try:
        choice = choose_config(ctx, config_path, env_var=config_env, search=search)
        ctx.obj = make(choice, data_dir, given_by(ctx, "data_dir", "--data-dir", data_dir_env))
    except FsmError as exc:
        fail(ctx, exc)


def program(
    help_text: str,
    *,
    commands: Sequence[click.Command],
    what: str,
    config_env: str,
    search: Sequence[str],
    data_dir_env: str,
    data_dir_help: str,
    make: Callable[[ConfigChoice, str | None, str], object],
) -> click.Group:
    """The top group of one program: ``--config`` and ``--data-dir`` (with their environment
    variables), ``--version``, the context ``make`` builds in ``ctx.obj``, and ``commands``."""

    @click.group(
        cls=FsmGroup,
        commands=commands,
        help=help_text,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar=config_env,
        help=f"{what} config file (TOML) [default: ${config_env}, else the first of "
        f"{', '.join(search)} that exists].",
    )
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar=data_dir_env, help=data_dir_help)
    @click.version_option(package_name="fsm")
    @click.pass_context
    def main(ctx: click.Context, config_path: str | None, data_dir: str | None) -> None:
        open_context(
            ctx,
            config_path,
            data_dir,
            config_env=config_env,
            search=search,
            data_dir_env=data_dir_env,
            make=make,
        )

    return main


def choose_config(
    ctx: click.Context, config_path: str | None, *, env_var: str, search: Sequence[str]
) -> ConfigChoice:
    """The config file a program reads: ``--config``, else ``$env_var``, else the first of ``search``
    that exists. One found that way is named on stderr (stdout may be JSON), so the user knows
    where the data comes from."""
    by_env = ctx.get_parameter_source("config_path") is ParameterSource.ENVIRONMENT
    choice = locate(
        config_path, given_by=f"${env_var}" if by_env else "--config", env_var=env_var, search=search
    )
    if choice.found:
        click.echo(
            f"using config {choice.path} (no --config or ${env_var}; the first of "
            f"{', '.join(search)} that exists)",
            err=True,
        )
    return choice


def given_by(ctx: click.Context, param: str, option: str, env_var: str) -> str:
    """How ``param`` was given: ``option`` on the command line, or ``$env_var``."""
    return f"${env_var}" if ctx.get_parameter_source(param) is ParameterSource.ENVIRONMENT else option


def json_option(f: F) -> F:
    """Add `--json` to a listing command; the command gets ``as_json: bool``."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


#: `--dir D` of `keys init|show` on both programs; the command gets ``directory: Path | None``.
key_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Key directory [default: <data-dir>/keys].",
)


@contextlib.contextmanager
def writing_output(path: Path, option: str = "--out") -> Iterator[None]:
    """Turn an OSError while writing ``path``, which ``option`` chose, into an OutputError naming both."""
    try:
        yield
    except OSError as exc:
        raise OutputError(
            f"cannot write {str(path)!r}: {exc.strerror or exc}",
            hint=f"choose another {option}: a file name in a directory you can write",
        ) from exc


#: Width of a table written to a file or a pipe: every character, however narrow the terminal
#: that started the pager, so "127.0.0.1:16100" never becomes "127.0.…".
PIPE_WIDTH = 1 << 16


def print_table(table: Table) -> None:
    """Print a rich table on stdout: as wide as the terminal, or at full width when not a terminal."""
    console = Console()
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    console.print(table)


def print_json(data: Any) -> None:
    """Print any msgspec-encodable value as indented JSON on stdout."""
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n")


def cell(value: object, limit: int = CELL_CHARS) -> Text:
    """A table cell of text a printer or client reported, for rich: controls and bidi overrides
    shown as ``<U+XXXX>``, cut to ``limit`` characters, and never read as rich markup (a model
    named ``[/bold]`` is shown as it is)."""
    return Text(shorten(display_text(value), limit))


def pass_obj(f: F) -> F:
    """Pass ``ctx.obj`` (the program's context object) as the first argument."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(click.get_current_context().obj, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


__all__ = [
    "PIPE_WIDTH",
    "FsmGroup",
    "cell",
    "choose_config",
    "fail",
    "given_by",
    "json_option",
    "key_dir_option",
    "open_context",
    "pass_obj",
    "print_json",
    "print_table",
    "program",
    "writing_output",
]
