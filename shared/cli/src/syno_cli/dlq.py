"""`syno dlq`: list, show, redrive and drop dead letters (messages no stage could process)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from nats.js import JetStreamContext
from rich.console import Console
from rich.table import Table

from syno_cli import servers
from syno_shared import deadletter
from syno_shared.settings import Settings

app = typer.Typer(help="Dead letters: messages no stage could process, kept with why.", no_args_is_help=True)
err = Console(stderr=True)
T = TypeVar("T")


def _with_js(action: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    settings = Settings()
    if settings.nats_url is None:
        err.print("[red]SYNO_NATS_URL is not set[/]: dead letters live in a running deployment's NATS")
        raise typer.Exit(2)
    nats_url = settings.nats_login_url() or settings.nats_url  # as SYNO_NATS_USER (the operator) when set

    async def run() -> T:
        connection = await servers.connect_nats(nats_url)
        try:
            return await action(connection.jetstream())
        finally:
            await connection.close()

    return asyncio.run(run())


@app.command("list")
def list_letters(as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """Every dead letter, oldest first: id, subject, stage, deliveries, error."""
    letters = _with_js(deadletter.list_all)
    if as_json:
        typer.echo(json.dumps([letter.as_dict() for letter in letters]))
        return
    table = Table("id", "subject", "stage", "deliveries", "error", "snapshot", "dead at", title="dead letters")
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.subject,
            letter.stage,
            str(letter.deliveries),
            f"{letter.error_code}: {letter.error}"[:80],
            (letter.snapshot_id or "?")[:12],
            f"{letter.dead_at:%Y-%m-%d %H:%M}" if letter.dead_at else "",
        )
    Console().print(table if letters else "no dead letters")


@app.command()
def show(dead_letter_id: Annotated[int, typer.Argument(help="The id `syno dlq list` shows.")]) -> None:
    """One dead letter in full: headers, error, trace id and body."""
    letter = _with_js(lambda js: deadletter.read(js, dead_letter_id))
    if letter is None:
        err.print(f"[red]no dead letter {dead_letter_id}[/]")
        raise typer.Exit(1)
    typer.echo(json.dumps({**letter.as_dict(with_body=True), "headers": letter.headers}, indent=2))


@app.command()
def redrive(
    dead_letter_id: Annotated[int | None, typer.Argument(help="The id to send again.")] = None,
    redrive_all: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    body: Annotated[
        Path | None, typer.Option(help="A corrected body to send instead of the stored one (one id only).")
    ] = None,
) -> None:
    """Send dead letters back to their subject, forced (the stage redoes its work), then remove them."""
    if (dead_letter_id is None) == (not redrive_all):
        err.print("[red]give one id or --all[/]")
        raise typer.Exit(2)
    if body is not None and redrive_all:
        err.print("[red]--body goes with one id[/]")
        raise typer.Exit(2)

    async def send(js: JetStreamContext) -> list[str]:
        if redrive_all:
            letters = await deadletter.list_all(js)
        else:
            one = await deadletter.read(js, dead_letter_id or 0)
            letters = [] if one is None else [one]
        done = []
        for letter in letters:
            attempt = f"redrive-{uuid.uuid4().hex[:8]}"
            data = body.read_bytes() if body is not None else letter.body
            await js.publish(letter.subject, data, headers=deadletter.redrive_headers(letter, attempt))
            await deadletter.drop(js, letter.id)
            done.append(f"{letter.id} -> {letter.subject} as {attempt}")
        return done

    done = _with_js(send)
    if not done:
        err.print("[red]nothing to redrive[/]")
        raise typer.Exit(1)
    for line in done:
        err.print(f"redriven {line}")


@app.command()
def drop(dead_letter_id: Annotated[int, typer.Argument(help="The id to remove for good.")]) -> None:
    """Remove a dead letter for good (after reading it: nothing else keeps it)."""
    if not _with_js(lambda js: deadletter.drop(js, dead_letter_id)):
        err.print(f"[red]no dead letter {dead_letter_id}[/]")
        raise typer.Exit(1)
    err.print(f"dropped {dead_letter_id}")
