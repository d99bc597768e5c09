"""Command-line interface. Typer apps only: parse, call the library, render."""

from mlplat.cli.app import ExitCode, app, main

__all__ = ["ExitCode", "app", "main"]
