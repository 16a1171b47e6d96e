"""`charter export aigrid`: bundle a policy as an AIGrid policy rule."""
from __future__ import annotations

import sys

import click

from charter.compiler.diagnostics import CharterError, render_text


def _settings(pairs: tuple[str, ...]) -> dict:
    """``KEY=VALUE`` pairs as a settings object (each VALUE JSON if it parses)."""
    import json

    out: dict = {"store": "sqlite"}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--setting")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out[key.strip()] = value
    return out


def register(cli: click.Group) -> None:
    @cli.group()
    def export() -> None:
        """Package a policy to run on another platform."""

    @export.command()
    @click.argument("policy", type=click.Path(dir_okay=False))
    @click.option("--release-tag", default="stable", show_default=True,
                  help="AIGrid release tag; the rule's URI is NAME:VERSION-TAG.")
    @click.option("--code-url", default=None, metavar="URL",
                  help="Where the bundle will be downloaded from (the PolicyRule's `code`); "
                       "defaults to the bundle's file name, to be replaced after upload.")
    @click.option("-o", "--output", "out_dir", default=".", show_default=True,
                  type=click.Path(file_okay=False), help="Folder to write the two files to.")
    @click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                  help="Set a parameter in the rule's policy_parameters (within its declared "
                       "range); amounts in major units, as for `charter run`.")
    @click.option("--setting", "settings", multiple=True, metavar="KEY=VALUE",
                  help="Put a setting in the rule's policy_settings (store, db_path, data_dir, "
                       "db_url, lock_wait, ephemeral, step_budget); AIGrid's executors give "
                       "these precedence over a caller's.  VALUE is JSON or plain text.")
    @click.option("--measure", "measure", default=None, type=click.Path(dir_okay=False),
                  metavar="EVENTS.jsonl",
                  help="Settle these events once and put the measured figures in "
                       "resource_estimates (default: the recorded benchmark's).")
    @click.option("--wheelhouse", default=None, type=click.Path(file_okay=False),
                  help="Folder of wheels (Charter and its requirements) to ship in the bundle "
                       "so a node without a package index can install it.")
    def aigrid(policy: str, release_tag: str, code_url: str | None, out_dir: str,
               params: tuple[str, ...], settings: tuple[str, ...], measure: str | None,
               wheelhouse: str | None) -> None:
        """Write NAME-VERSION.zip (code/function.py, requirements.txt, the policy and its
        imports) and NAME-VERSION.policy.json (the PolicyRule document) for AIGrid."""
        from charter.cli_runtime import _param_overrides
        from charter.compiler.export_aigrid import ExportError, export as do_export
        from charter.compiler.pipeline import Compilation

        if not release_tag.strip() or any(c in release_tag for c in ":/ "):
            raise click.BadParameter("must be non-empty, without ':', '/' or spaces",
                                     param_hint="--release-tag")
        try:
            overrides = _param_overrides(Compilation.from_path(policy).ir, params) if params \
                else {}
            chosen = _settings(settings) if settings else None
            result = do_export(policy, out_dir, release_tag=release_tag, code_url=code_url,
                               params=overrides, settings=chosen, measure_events=measure,
                               wheelhouse=wheelhouse)
        except CharterError as err:
            click.echo(render_text(err.diagnostics, err.sources), err=True)
            io_codes = {"E0001"}
            sys.exit(2 if any(d.code in io_codes for d in err.diagnostics) else 1)
        except ExportError as err:
            click.echo(f"charter: cannot export: {err}", err=True)
            sys.exit(1)
        except OSError as err:
            click.echo(f"charter: cannot export: {err}", err=True)
            sys.exit(2)
        rule = result.policy_rule
        click.echo(f"wrote {result.zip_path}")
        click.echo(f"wrote {result.json_path}")
        click.echo(f"policy_rule_uri: {rule['policy_rule_uri']}")
        if code_url is None:
            click.echo("note: upload the zip and set the PolicyRule's `code` to its URL "
                       "(or pass --code-url)")
