"""Figures and the "Segments over time" report section: numbers match the tables, the page is
offline, hostile names stay text, and (with Chromium) every figure draws without errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs
from sklearn.cluster import KMeans

from segmentlab.dynamics.migration import migration_matrix
from segmentlab.dynamics.snapshots import NOT_YET
from segmentlab.dynamics.tracker import DynamicsSettings, SegmentTracker
from segmentlab.reports.dynamics import (
    dynamics_figures,
    dynamics_section,
    migration_heatmap,
    pair_flows,
    sankey,
    sizes_over_time,
)
from segmentlab.reports.html import html_page
from tests.test_browser import CHROMIUM, page  # noqa: F401  (page is a fixture)
from tests.test_dynamics import fit_run, planted_shop
from tests.test_reports import HOSTILE


@pytest.fixture(scope="module")
def result():
    transactions, _ = planted_shop(seed=1, n_small=80, n_big=80)
    union, _, segmenter, labels = fit_run(transactions, KMeans(2, n_init=10, random_state=0))
    profile = pd.DataFrame({"name": [HOSTILE, "big spenders"], "retention": ["call", HOSTILE]},
                           index=pd.Index([0, 1], name="segment"))
    settings = DynamicsSettings(churn_days=25, n_bootstrap=10)
    tracker = SegmentTracker(union, segmenter, settings).fit(transactions, labels, profile)
    return tracker.track(transactions)


def test_sankey_links_carry_every_customer_of_the_pair(result):
    fig = sankey(result)
    link = fig.data[0].link
    start = result.snapshots.at(result.snapshots.dates[-2])
    assert sum(link.value) == (start["state"] != NOT_YET).sum()
    assert len(fig.data[0].node.label) == len(set(link.source)) + len(set(link.target))


def test_heatmap_shows_counts_over_row_shares(result):
    fig = migration_heatmap(result)
    flows = pair_flows(result)
    counts = migration_matrix(flows, result.ranks, "customers")
    assert np.array_equal(np.asarray(fig.data[0].text), counts.to_numpy())
    assert np.allclose(np.asarray(fig.data[0].z).sum(axis=1), 1.0)
    assert list(fig.data[0].y) == [result.names[s] for s in counts.index]


def test_sizes_stack_to_the_customers_at_each_date(result):
    fig = sizes_over_time(result)
    totals = np.sum([np.asarray(trace.y) for trace in fig.data], axis=0)
    states = result.snapshots.states
    expected = states[states["state"] != NOT_YET].groupby("date").size().to_numpy()
    assert np.array_equal(totals, expected)


def test_section_is_offline_and_keeps_hostile_names_inert(result):
    section = dynamics_section(result, top=5)
    document = html_page("dynamics", [section])
    assert section.id == "segments-over-time" and "Segments over time" in document
    assert "<script>window.__pwned" not in document and "&lt;script&gt;window.__pwned" in document
    assert document.count(get_plotlyjs()) == 1
    ours = document.replace(get_plotlyjs(), "")  # the bundle's defaults mention its CDN
    assert "cdn.plot.ly" not in ours and "https://" not in ours and "http://" not in ours
    assert document.count('class="plotly-graph-div"') == 3
    assert "AUC of the warning" in document
    assert set(dynamics_figures(result)) == {"dynamics_sankey", "dynamics_sizes", "dynamics_matrix",
                                             "dynamics_matrix_first_last"}


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium")
def test_section_renders_in_a_browser(page, result, tmp_path):  # noqa: F811
    path = tmp_path / "dynamics.html"
    path.write_text(html_page("dynamics", [dynamics_section(result)]), encoding="utf-8")
    page.open(path)
    assert page.errors() == []
    assert page.evaluate("document.querySelectorAll('.js-plotly-plot svg.main-svg').length") >= 3
    assert page.evaluate("document.querySelectorAll('#segments-over-time .sankey-node').length") > 0
    assert page.evaluate("document.querySelectorAll('#segments-over-time g.hm').length") == 1
    assert page.evaluate("window.__pwned === undefined && document.images.length === 0")
