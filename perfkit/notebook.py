"""Helpers for notebooks: static, themed figures, and demo data made when a folder has none.

The notebooks in ``notebooks/`` start with::

    import perfkit.notebook as nb
    nb.setup()
    cat = nb.open_data(data_dir, min_runs=1)

so that they run top to bottom out of the box (the demo's runs are made, on the simulator, when
``data_dir`` holds none) and on any data (pass ``data_dir`` and ``run_id`` as papermill parameters).
"""

from __future__ import annotations

import sys
from pathlib import Path

import altair as alt
import pandas as pd

from perfkit.aio import run_sync
from perfkit.query.catalog import Catalog
from perfkit.query.frames import variant_run_ids
from perfkit.report.theme import theme_config

__all__ = ["open_data", "open_variants", "plain_runs", "setup", "show_svg"]


def setup() -> None:
    """Render Altair charts as inline SVG in perfkit's theme, and show wide frames whole.

    SVG needs no JavaScript and no CDN, so a notebook's figures survive being saved, executed
    headless, exported to HTML or PDF, and opened offline.
    """

    @alt.theme.register("perfkit", enable=True)
    def _perfkit() -> alt.theme.ThemeConfig:
        return alt.theme.ThemeConfig(config=theme_config())  # type: ignore[typeddict-item]

    alt.renderers.enable("svg")
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.width", 200)
    pd.set_option("display.precision", 3)


def show_svg(chart: alt.TopLevelMixin) -> None:
    """Display a chart as SVG (the same rendering as the reports)."""
    from IPython.display import SVG, display

    from perfkit.report.html_render import chart_svg

    display(SVG(chart_svg(chart)))


def open_data(data_dir: str | Path | None = None, *, min_runs: int = 1, scale: float = 0.5) -> Catalog:
    """Open ``data_dir``; when it holds fewer than ``min_runs`` runs, make demo runs there first.

    Runs tagged with a model variant (the demo's trade-off runs) do not count: see
    :func:`open_variants`.

    Parameters
    ----------
    data_dir : path, optional
        Default ``data`` in the current folder, or ``../data`` when the current folder is
        ``notebooks/`` (where JupyterLab runs a notebook).
    min_runs : int
        Runs the notebook needs (a comparison needs 2).  Missing ones are made by the demo on the
        simulated endpoint with seeds 0, 1, ..., each printed as it is made.
    scale : float
        Duration multiplier of demo runs made here (0.5: about 25 s of traffic each).
    """
    path = _data_path(data_dir)
    cat = Catalog(path) if path.is_dir() else None
    have = len(plain_runs(cat)) if cat is not None else 0
    if have >= min_runs:
        assert cat is not None
        return cat
    if cat is not None:
        cat.close()
    from perfkit.demo import DemoPlan, default_sim_config, run_demo
    from perfkit.sim.process import SimProcess

    for seed in range(have, min_runs):
        print(
            f"{path} holds {have} run(s); making demo run {seed + 1} of {min_runs} on the simulated endpoint "
            f"(seed {seed}, about {70 * scale:.0f} s) ...",
            file=sys.stderr,
        )
        with SimProcess(default_sim_config(seed)) as sim:
            _run(run_demo(path, DemoPlan().scaled(scale), sim, seed=seed))
        have += 1
    return Catalog(path)


def _data_path(data_dir: str | Path | None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    return Path("../data") if Path.cwd().name == "notebooks" else Path("data")


def plain_runs(cat: Catalog) -> list[str]:
    """Runs not tagged with a model variant, oldest first (the demo's main runs, or any ordinary run)."""
    tagged = variant_run_ids(cat)
    return [r for r in cat.run_ids() if r not in tagged]


def open_variants(data_dir: str | Path | None = None) -> Catalog:
    """Open ``data_dir``; when no run there names a model variant, measure the demo's three simulated ones first.

    Each variant (fp16, int8, int4; :mod:`perfkit.sim.variants`) gets a three-step rate sweep on its
    own simulator, about 30 s each (:func:`perfkit.demo.run_variants`).
    """
    path = _data_path(data_dir)
    if path.is_dir():
        with Catalog(path) as cat:
            if variant_run_ids(cat):
                return Catalog(path)
    from perfkit.demo import DEMO_VARIANTS, DemoPlan, run_variants

    print(
        f"{path} holds no run of a model variant; measuring the simulated {', '.join(DEMO_VARIANTS)} (about 90 s) ...",
        file=sys.stderr,
    )
    run_variants(path, DemoPlan())
    return Catalog(path)


def _run(coro):
    """Run a coroutine from a notebook, whose kernel may already have an event loop running."""
    return run_sync(coro)
