"""The `rebal` command line."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the version."""
    from rebal import __version__

    typer.echo(__version__)
