"""Sphinx extension: ``.. charter-cli::`` renders the ``--help`` of every command.

The CLI reference is generated from the click group itself
(:data:`charter.cli.cli`), so a command added by any area module appears in
the docs without anyone editing them, and option text cannot drift.
"""
from __future__ import annotations

from typing import Any

import click
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def _walk(cmd: click.Command, path: list[str], parent: click.Context | None):
    settings = dict(cmd.context_settings)  # e.g. -h as well as --help, as on the terminal
    settings.update(terminal_width=88, max_content_width=88)
    ctx = click.Context(cmd, info_name=path[-1], parent=parent, **settings)
    yield path, cmd, ctx
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _walk(sub, path + [name], ctx)


def cli_rst() -> list[str]:
    from charter.cli import cli

    out: list[str] = []
    for path, cmd, ctx in _walk(cli, ["charter"], None):
        if len(path) == 1:
            continue  # the group itself is described by the page's introduction
        title = " ".join(path)
        out += [f"``{title}``", "-" * (len(title) + 4), ""]
        out += [".. code-block:: text", ""]
        out += ["   " + line if line else "" for line in cmd.get_help(ctx).splitlines()]
        out.append("")
    return out


class CharterCli(SphinxDirective):
    has_content = False

    def run(self) -> list[Any]:
        from docutils import nodes

        container = nodes.section()
        nested_parse_with_titles(self.state, StringList(cli_rst(), "<charter-cli>"), container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("charter-cli", CharterCli)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
