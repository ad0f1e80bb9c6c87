"""`fsm-server import PATH...`: re-import mbox files, Maildirs, .eml and .fsm files."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from fsm_common.cli import json_option, pass_obj, print_json

from .. import wiring
from ..context import ServerContext
from ..ingest.archive import import_paths
from ..ingest.pipeline import Tally, Verdict


def render_tally(tally: Tally, as_json: bool) -> None:
    if as_json:
        print_json(tally.to_dict())
        return
    o = tally.outcomes
    click.echo(
        f"loaded {o['loaded']}, duplicate {o['duplicate']}, chunk stored {o['chunk_stored']}, "
        f"quarantined {o['quarantined']}"
    )
    for reason, n in sorted(tally.reasons.items()):
        click.echo(f"  quarantined {reason}: {n}")


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--no-progress", is_flag=True, help="No progress bar (logs, cron).")
@json_option
@pass_obj
def import_command(ctx: ServerContext, paths: tuple[Path, ...], no_progress: bool, as_json: bool) -> None:
    """Load archived report mails (mbox, Maildir, .eml, .fsm); importing twice changes nothing."""
    with wiring.open_db(ctx) as db:
        pipeline = wiring.pipeline(ctx, db)
        if no_progress or as_json:
            tally = import_paths(paths, pipeline)
        else:
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
            with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
                task = bar.add_task("importing", total=None)

                def progress(done: int, total: int, verdict: Verdict) -> None:
                    what = f"{verdict.outcome:<12} {verdict.client or ''} {verdict.seq or ''}"
                    bar.update(task, completed=done, total=total, description=what)

                tally = import_paths(paths, pipeline, progress=progress)
    render_tally(tally, as_json)


__all__ = ["import_command", "render_tally"]
