"""Sphinx extension: ``.. charter-simulation:: PATH`` runs a scenario at build time.

The plots on the simulation page are made when the docs build, from the
scenario file in the repository, so they always show what the current
runtime and policy do.  The run is shrunk (``:epochs:``, ``:runs:``,
``:agents:`` at most per population) to keep the build fast, and the plots
are inlined as SVG (nothing is written into the source tree).
"""
from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


class CharterSimulation(SphinxDirective):
    required_arguments = 1
    option_spec = {"epochs": directives.positive_int, "runs": directives.positive_int,
                   "agents": directives.positive_int, "plots": directives.unchanged}

    def run(self) -> list[Any]:
        from charter.simulate import ScenarioError, scenario_from_data, simulate

        path = (Path(self.env.srcdir) / self.arguments[0]).resolve()
        self.env.note_dependency(str(path))
        data = tomllib.loads(path.read_text("utf-8"))
        head = data["scenario"]
        head["epochs"] = self.options.get("epochs", head.get("epochs", 10))
        head["runs"] = self.options.get("runs", 1)
        cap = self.options.get("agents")
        if cap:
            for p in data.get("populations", []):
                p["count"] = min(p["count"], cap)
        try:
            sc = scenario_from_data(data, base_dir=path.parent, file=str(path))
        except ScenarioError as err:
            raise self.error(err.render())
        result = simulate(sc, executor="serial")
        wanted = (self.options.get("plots") or "gini lorenz sweep balances").split()
        out: list[Any] = []
        with tempfile.TemporaryDirectory() as tmp:
            written = result.write(tmp)
            for name in wanted:
                svg = next((p for p in written if p.name == f"{name}.svg"), None)
                if svg is None:
                    continue
                text = svg.read_text("utf-8")
                out.append(nodes.raw("", f'<figure class="charter-sim">{text[text.index("<svg"):]}'
                                         "</figure>", format="html"))
        rate = result.rejected / result.events if result.events else 0
        para = nodes.paragraph(text=(
            f"Generated when these docs were built: {sc.name}, {len(result.points)} sweep "
            f"point(s) x {sc.runs} run(s) x {sc.epochs} epochs, {result.events} events "
            f"settled ({rate:.0%} rejected)."))
        return [para, *out]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("charter-simulation", CharterSimulation)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
