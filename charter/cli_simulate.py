"""`charter simulate`: run a scenario and write its metrics, plots and report."""
from __future__ import annotations

import json
import sys

import click


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("scenario", type=click.Path(dir_okay=False))
    @click.option("-o", "--output", "out_dir", default=None, type=click.Path(file_okay=False),
                  help="Folder for metrics.csv, metrics.parquet, the plots and report.html "
                       "[default: simulation-NAME].")
    @click.option("--runs", type=click.IntRange(1, 10_000), default=None,
                  help="Monte Carlo runs per sweep point (overrides the scenario).")
    @click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
                  help="Random seed (overrides the scenario).")
    @click.option("--epochs", type=click.IntRange(1, 100_000), default=None,
                  help="Epochs per run (overrides the scenario).")
    @click.option("--executor", default="auto", show_default=True,
                  help="serial, processes (all cores), or dask://HOST:PORT.")
    @click.option("-j", "--jobs", type=click.IntRange(1, 1024), default=None,
                  help="Processes for the processes executor [default: the cores].")
    @click.option("--no-plots", is_flag=True, help="Write the CSV and Parquet only.")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
    def simulate(scenario: str, out_dir: str | None, runs: int | None, seed: int | None,
                 epochs: int | None, executor: str, jobs: int | None, no_plots: bool,
                 as_json: bool, quiet: bool) -> None:
        """Drive the policy of SCENARIO (TOML or JSON) with generated agents over many
        epochs, settling every event on the real runtime, and write per-epoch metrics
        (balances, supply, pools, escrows, Gini, Lorenz, top-10% share, rejections),
        plots and a one-page HTML report."""
        try:
            from charter.simulate import (ExecutorError, ScenarioError, load_scenario,
                                          simulate as run_sim)
        except ImportError as err:  # pragma: no cover - the package is part of charter
            click.echo(f"charter: simulate is unavailable: {err}", err=True)
            sys.exit(2)
        overrides = {k: v for k, v in (("runs", runs), ("seed", seed), ("epochs", epochs))
                     if v is not None}
        try:
            sc = load_scenario(scenario, overrides=overrides)
        except ScenarioError as err:
            click.echo(err.render(), err=True)
            sys.exit(1)
        n_points = len(sc.points())
        total = n_points * sc.runs
        bar = None
        if not quiet and not as_json:
            bar = click.progressbar(length=total, label=f"{sc.name}: {total} runs",
                                    file=sys.stderr, show_pos=True)
            bar.__enter__()

        def tick(_: object) -> None:
            if bar is not None:
                bar.update(1)

        try:
            result = run_sim(sc, executor=executor, jobs=jobs, progress=tick)
        except ExecutorError as err:
            click.echo(f"charter: {err}", err=True)
            sys.exit(2)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        out = out_dir or f"simulation-{sc.name}"
        try:
            written = result.write(out, plots=not no_plots)
        except ImportError as err:
            click.echo(f"charter: writing the results needs the `sim` extra "
                       f"(pip install 'charter-policy[sim]'): {err}", err=True)
            sys.exit(2)
        except OSError as err:
            click.echo(f"charter: cannot write to {out}: {err.strerror or err}", err=True)
            sys.exit(2)
        rate = result.rejected / result.events if result.events else 0.0
        summary = {"scenario": sc.name, "points": n_points, "runs": sc.runs,
                   "epochs": sc.epochs, "events": result.events,
                   "rejected": result.rejected, "rejection_rate": round(rate, 4),
                   "events_per_second": round(result.events / result.seconds)
                   if result.seconds else None,
                   "seconds": round(result.seconds, 3),
                   "rejections": result.rejection_reasons(),
                   "written": [str(p) for p in written]}
        if as_json:
            click.echo(json.dumps(summary, indent=2))
            return
        click.echo(f"{result.events} events settled in {result.seconds:.2f} s "
                   f"({summary['events_per_second']} events/s); {result.rejected} rejected "
                   f"({rate:.1%})")
        if rate > 0.5:
            click.echo("warning: most events were rejected; the agents' behaviour does not "
                       "fit this policy (see the report's rejection reasons)", err=True)
        for reason, n in list(summary["rejections"].items())[:5]:
            click.echo(f"  {n:>8}  {reason}")
        click.echo(f"wrote {len(written)} files to {out}/ (report.html, metrics.csv, ...)")
