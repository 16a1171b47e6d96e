"""Outputs of a simulation: the tidy frame, CSV, Parquet, plots and a one-page report.

The frame has one row per (sweep point, run, epoch, metric, key): the swept
parameters as columns, ``value`` (a float, for plots and pandas) and
``exact`` (the exact amount or ratio as text: ``"1250"``, ``"3/7"``).  Files
are byte-for-byte the same for the same scenario and seed: rows are in a
fixed order, plots carry no date and a fixed SVG hash salt.
"""
from __future__ import annotations

import html
import io
from fractions import Fraction
from pathlib import Path
from typing import Any

COLUMNS = ("point", "run", "epoch", "metric", "key", "value", "exact")


def exact_text(v: Any) -> str:
    if isinstance(v, Fraction):
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    return repr(v) if isinstance(v, float) else str(v)


def frame(scenario: Any, points: list[dict], results: list) -> Any:
    """The tidy pandas DataFrame of every run."""
    import pandas as pd

    swept = [name for name, _ in scenario.sweep]
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    params: dict[str, list] = {n: [] for n in swept}
    for r in results:
        shown = {n: exact_text(points[r.point][n]) if not isinstance(points[r.point][n], str)
                 else points[r.point][n] for n in swept}
        for epoch, metric, key, v in r.rows:
            cols["point"].append(r.point)
            cols["run"].append(r.run)
            cols["epoch"].append(epoch)
            cols["metric"].append(metric)
            cols["key"].append(key)
            cols["value"].append(float(v))
            cols["exact"].append(exact_text(v))
            for n in swept:
                params[n].append(shown[n])
    df = pd.DataFrame({"point": cols["point"], **params,
                       **{c: cols[c] for c in COLUMNS if c != "point"}})
    for c in ("point", "run", "epoch"):
        df[c] = df[c].astype("int64")
    df["value"] = df["value"].astype("float64")
    for c in ["metric", "key", "exact", *swept]:
        df[c] = df[c].astype(object)
    return df


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "charter-simulate", "figure.dpi": 100,
                         "font.size": 9, "figure.autolayout": True})
    return plt


def _save(fig: Any, out: Path, stem: str) -> list[Path]:
    paths = []
    for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        p = out / f"{stem}.{ext}"
        fig.savefig(p, format=ext, metadata=meta)
        paths.append(p)
    return paths


def _decimals(scenario: Any) -> dict[str, int]:
    from .run import _policy

    return {a.name: a.decimals for a in _policy(scenario.policy_path).assets}


def _point_label(scenario: Any, point: dict) -> str:
    swept = [n for n, _ in scenario.sweep]
    return ", ".join(f"{n}={point[n]}" for n in swept) or "base"


def plots(scenario: Any, points: list[dict], df: Any, out: Path) -> dict[str, list[Path]]:
    """balances over time, Gini over time, final Lorenz curves, sweep heat map, rejections."""
    plt = _plt()
    made: dict[str, list[Path]] = {}
    assets = sorted(df.loc[df.metric == "gini", "key"].unique())
    asset = assets[0] if assets else None

    # balances by role over time (mean of runs): one panel per role, a line per sweep point
    rb = df[(df.metric == "role_balance") & df.key.str.endswith(f":{asset}")]
    held = rb.groupby("key")["value"].apply(lambda v: bool((v != 0).any()))
    roles = sorted(k.rsplit(":", 1)[0] for k, any_held in held.items() if any_held)
    scale = 10 ** _decimals(scenario).get(asset, 0)
    fig, axes = plt.subplots(1, max(1, len(roles)), figsize=(3.2 * max(1, len(roles)), 3.6),
                             squeeze=False, sharey=False)
    for ax, role in zip(axes[0], roles):
        sub = rb[rb.key == f"{role}:{asset}"].groupby(["point", "epoch"])["value"].mean()
        for point, series in sub.groupby(level="point"):
            ax.plot(series.index.get_level_values("epoch"), series.values / scale,
                    label=_point_label(scenario, points[point]))
        ax.set_title(role)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel(f"{asset} held by the role (mean of runs)")
    if len(points) > 1 and roles:
        axes[0][-1].legend(fontsize=6)
    fig.suptitle("Balances by role over time")
    made["balances"] = _save(fig, out, "balances")
    plt.close(fig)

    g = df[(df.metric == "gini") & (df.key == asset)]
    fig, ax = plt.subplots(figsize=(7, 4))
    for point, sub in g.groupby("point"):
        stats = sub.groupby("epoch")["value"].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], label=_point_label(scenario, points[point]))
        ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.15)
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"Gini of {asset} (mean, min-max of runs)")
    ax.set_title("Inequality over time")
    if len(points) > 1:
        ax.legend(fontsize=7, ncol=2)
    made["gini"] = _save(fig, out, "gini")
    plt.close(fig)

    lz = df[(df.metric == "lorenz") & df.key.str.startswith(f"{asset}:")]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="equality")
    for point, sub in lz.groupby("point"):
        curve = sub.groupby("key")["value"].mean()
        xs = [Fraction(k.rsplit(":", 1)[1]) for k in curve.index]
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        ax.plot([float(xs[i]) for i in order], [curve.values[i] for i in order],
                label=_point_label(scenario, points[point]))
    ax.set_xlabel("share of agents (poorest first)")
    ax.set_ylabel(f"share of {asset}")
    ax.set_title("Final Lorenz curves")
    ax.legend(fontsize=7)
    made["lorenz"] = _save(fig, out, "lorenz")
    plt.close(fig)

    if scenario.sweep:
        final = g[g.epoch == g.epoch.max()].groupby("point")["value"].mean()
        first = scenario.sweep[0]
        second = scenario.sweep[1] if len(scenario.sweep) > 1 else None
        rows = [str(v) for v in second[1]] if second else ["-"]
        cols = [str(v) for v in first[1]]
        grid = [[float("nan")] * len(cols) for _ in rows]
        for point, value in final.items():
            p = points[point]
            c = cols.index(str(p[first[0]]))
            r = rows.index(str(p[second[0]])) if second else 0
            # further swept params: the mean over them
            grid[r][c] = value if grid[r][c] != grid[r][c] else (grid[r][c] + value) / 2
        fig, ax = plt.subplots(figsize=(6, 4))
        im = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel(first[0])
        ax.set_ylabel(second[0] if second else "")
        for r in range(len(rows)):
            for c in range(len(cols)):
                if grid[r][c] == grid[r][c]:
                    ax.text(c, r, f"{grid[r][c]:.3f}", ha="center", va="center", color="w")
        fig.colorbar(im, label=f"final Gini of {asset}")
        ax.set_title("Sweep: final Gini (mean of runs)")
        made["sweep"] = _save(fig, out, "sweep")
        plt.close(fig)

    rej = df[df.metric == "rejections"].groupby("key")["value"].sum().sort_values()
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.3 * len(rej) + 1)))
    if len(rej):
        ax.barh([k[:60] for k in rej.index], rej.values)
    ax.set_xlabel("rejected events (all runs and points)")
    ax.set_title("Rejections by reason")
    made["rejections"] = _save(fig, out, "rejections")
    plt.close(fig)
    return made


def report_html(scenario: Any, points: list[dict], results: list, df: Any,
                made: dict[str, list[Path]]) -> str:
    """One page: what ran, the event counts and rejection rate, and the plots (inline SVG)."""
    submitted = sum(r.submitted for r in results)
    applied = sum(r.applied for r in results)
    rejected = sum(r.rejected for r in results)
    skipped = sum(r.skipped for r in results)
    rate = rejected / submitted if submitted else 0.0
    esc = html.escape
    rows = []
    for i, p in enumerate(points):
        rs = [r for r in results if r.point == i]
        sub = sum(r.submitted for r in rs)
        rej = sum(r.rejected for r in rs)
        rows.append(f"<tr><td>{i}</td><td>{esc(_point_label(scenario, p))}</td>"
                    f"<td>{sub}</td><td>{rej}</td>"
                    f"<td>{(rej / sub if sub else 0):.1%}</td></tr>")
    warn = (f'<p class="warn">Most events were rejected ({rate:.0%}): the agents\' '
            f'behaviour does not fit this policy; see the reasons below.</p>'
            if rate > 0.5 else "")
    figures = []
    for name, paths in made.items():
        svg = next(p for p in paths if p.suffix == ".svg").read_text("utf-8")
        svg = svg[svg.index("<svg"):]
        figures.append(f'<figure id="{name}">{svg}<figcaption><a href="{esc(paths[0].name)}">'
                       f'PNG</a> · <a href="{esc(paths[1].name)}">SVG</a></figcaption></figure>')
    top = (df[df.metric == "rejections"].groupby("key")["value"].sum()
           .sort_values(ascending=False).head(10))
    reasons = "".join(f"<tr><td>{esc(k)}</td><td>{int(v)}</td></tr>" for k, v in top.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(scenario.name)}: charter simulate</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em}}
.warn{{background:#fee;border:1px solid #c66;padding:.5em}}figure{{margin:1em 0}}
svg{{max-width:100%;height:auto}}</style></head><body>
<h1>{esc(scenario.name)}</h1>
<p>Policy <code>{esc(Path(scenario.policy_path).name)}</code>; {len(points)} sweep point(s) ×
{scenario.runs} run(s) × {scenario.epochs} epochs of {scenario.epoch_length} s;
{sum(p.count for p in scenario.populations)} agents; seed {scenario.seed}.
Every event was settled by the Charter runtime, exactly.</p>
<p>{submitted} events submitted: {applied} applied, {rejected} rejected ({rate:.1%}),
{skipped} behaviours found nothing to act on.</p>{warn}
<table><tr><th>point</th><th>parameters</th><th>events</th><th>rejected</th><th>rate</th></tr>
{''.join(rows)}</table>
{''.join(figures)}
<h2>Most frequent rejections</h2>
<table><tr><th>reason</th><th>events</th></tr>{reasons}</table>
<p>Data: <a href="metrics.csv">metrics.csv</a>, <a href="metrics.parquet">metrics.parquet</a>
(one row per point, run, epoch, metric and key; <code>exact</code> holds exact values).</p>
</body></html>
"""


def write_parquet(df: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    # the pandas metadata names the pandas version only: deterministic for one install
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    path.write_bytes(buf.getvalue())
