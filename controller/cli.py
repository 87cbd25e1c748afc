"""The ``groundlink`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="groundlink",
    help="Ground-station satellite link controller.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
seeds_app = typer.Typer(help="The frozen seed scenario (constellation, stations, fixtures).")
app.add_typer(seeds_app, name="seeds")


@seeds_app.command("generate")
def seeds_generate(
    out: Annotated[Path, typer.Option(help="Directory to write the seed files into.")] = Path(
        "seeds"
    ),
) -> None:
    """Regenerate the seed scenario deterministically (constellation TLEs, stations)."""
    from controller import seeds

    for path in seeds.generate(out):
        typer.echo(f"wrote {path}")


def main() -> None:
    """Console-script entry point."""
    app()
