"""`charter simulate`: drive a policy with generated agents over many epochs, settled exactly.

The pipeline, stage by stage (one path for the command line and the API)::

    load     read the scenario (TOML/JSON file, or data from Python)
    check    compile the policy; check events, arguments, ranges, sweep (ScenarioError)
    plan     the sweep grid x Monte Carlo runs: one task each
    run      each task on the real runtime, in memory (serial, processes or Dask)
    collect  the tidy DataFrame, rows in (point, run, epoch) order
    write    CSV, Parquet, PNG+SVG plots, report.html (optional)

Python::

    from charter.simulate import load_scenario, simulate
    result = simulate(load_scenario("examples/gig_market/scenario.toml"))
    result.frame            # pandas DataFrame
    result.write("out/")    # the files `charter simulate` writes
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

import attrs

from .errors import ScenarioError, ScenarioProblem
from .executors import ExecutorError, execute
from .run import RunResult, Task
from .scenario import Scenario, load_scenario, scenario_from_data

__all__ = ["Scenario", "ScenarioError", "ScenarioProblem", "ExecutorError", "SimulationResult",
           "load_scenario", "scenario_from_data", "simulate", "plan", "STAGES"]


def plan(scenario: Scenario) -> tuple[list[dict], list[Task]]:
    points = scenario.points()
    tasks = [Task(i, tuple(sorted(p.items())), run) for i, p in enumerate(points)
             for run in range(scenario.runs)]
    return points, tasks


@attrs.define
class SimulationResult:
    scenario: Scenario
    points: list
    results: list  # RunResult per (point, run), in order
    seconds: float
    _frame: Any = None

    @property
    def frame(self) -> Any:
        """The tidy pandas DataFrame (built on first use)."""
        if self._frame is None:
            from .outputs import frame

            self._frame = frame(self.scenario, self.points, self.results)
        return self._frame

    @property
    def events(self) -> int:
        return sum(r.submitted for r in self.results)

    @property
    def rejected(self) -> int:
        return sum(r.rejected for r in self.results)

    def rejection_reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            for _, metric, key, n in r.rows:
                if metric == "rejections":
                    out[key] = out.get(key, 0) + n
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def write(self, out_dir: Union[str, Path], *, plots: bool = True) -> list[Path]:
        """metrics.csv, metrics.parquet, and (``plots``) PNG+SVG plots and report.html."""
        from .outputs import plots as make_plots, report_html, write_parquet

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        df = self.frame
        written = [out / "metrics.csv", out / "metrics.parquet"]
        df.to_csv(written[0], index=False, lineterminator="\n")
        write_parquet(df, written[1])
        if plots:
            made = make_plots(self.scenario, self.points, df, out)
            report = out / "report.html"
            report.write_text(report_html(self.scenario, self.points, self.results, df, made),
                              "utf-8")
            written += [p for ps in made.values() for p in ps] + [report]
        return written


def simulate(scenario: Scenario, *, executor: Optional[str] = None, jobs: Optional[int] = None,
             progress: Optional[Callable[[RunResult], None]] = None) -> SimulationResult:
    """Run every (sweep point, run) of ``scenario`` on the real runtime."""
    t0 = time.perf_counter()
    points, tasks = plan(scenario)
    results = execute(scenario, tasks, executor, jobs, progress)
    return SimulationResult(scenario, points, results, time.perf_counter() - t0)


# The stages above as a table (documentation and the CLI's --explain use it).
STAGES: tuple[tuple[str, str], ...] = (
    ("load", "read the scenario (TOML/JSON file, or data from Python)"),
    ("check", "compile the policy; check events, arguments, ranges and the sweep"),
    ("plan", "the sweep grid x Monte Carlo runs: one task each"),
    ("run", "each task on the real runtime, in memory (serial, processes or Dask)"),
    ("collect", "the tidy DataFrame, rows in (point, run, epoch) order"),
    ("write", "CSV, Parquet, PNG+SVG plots, report.html"),
)
