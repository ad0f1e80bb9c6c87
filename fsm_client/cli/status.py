"""`fsm-client status`: last scan, last send, outbox depth, next runs."""

from __future__ import annotations

import click

from fsm_common.cli import json_option, pass_obj, print_json
from fsm_protocol.display import display_text

from ..context import ClientContext
from ..daemon import client_status
from ..store import Store


@click.command("status")
@json_option
@pass_obj
def status_command(obj: ClientContext, as_json: bool) -> None:
    """Show when the client last read and sent, what waits in the outbox, and what runs next."""
    with Store.open_readonly(obj.existing_store()) as store:  # works on a read-only data dir
        info = client_status(obj.config, store)
    if as_json:
        print_json(info)
        return
    click.echo(f"client        {info.client_id} (last report number {info.last_seq})")
    click.echo(f"data          {obj.data_dir} ({obj.data_dir_from}; {obj.config_choice.describe()})")
    click.echo(f"devices       {info.devices}")
    click.echo(f"last scan     {info.last_scan or 'never'}")
    click.echo(f"last send     {info.last_send or 'never'}")
    problem = info.problem
    if problem:
        click.secho(f"problem       {display_text(problem.error)} (since {problem.since})", fg="red")
        click.echo(f"              hint: {display_text(problem.hint)}")
    depth = info.outbox_depth
    line = f"outbox        {depth} waiting"
    if depth:
        line += f" (oldest {info.oldest_unsent_seq}"
        if info.send_error:
            line += f"; next try {info.next_attempt}; last error: {display_text(info.send_error)}"
        line += ")"
    click.echo(line)
    for alert in info.active_alerts:
        click.echo(
            f"alert         {display_text(alert.ip)} {display_text(alert.condition)} since {alert.since}"
        )
    click.echo(f"next runs     ({info.timezone})")
    for job, at in info.next_runs.items():
        click.echo(f"  {job:<11} {at or 'off'}")


__all__ = ["status_command"]
