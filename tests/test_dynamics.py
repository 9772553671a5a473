"""Segments through time: snapshot dates, features as of a date, the fitted segmenter applied
without refitting, explicit states, and planted migrations recovered by the matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, KMeans
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from segmentlab.dynamics.migration import (
    all_flows,
    flow_table,
    migration_matrix,
    migration_metrics,
    segment_values,
    state_ranks,
)
from segmentlab.dynamics.snapshots import (
    CHURNED,
    NOT_YET,
    SnapshotLabeller,
    features_at,
    parse_every,
    snapshot_dates,
    spend_between,
    take_snapshots,
)
from segmentlab.dynamics.tracker import DynamicsSettings, SegmentTracker
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.schema import DataError
from segmentlab.segmentation.clustering import SampledAgglomerative
from tests.conftest import clean_lines, real_data_path

PLANT_DATE = pd.Timestamp("2011-07-01")
PLANTED_SHARE = 0.25


def planted_shop(seed: int = 0, n_small: int = 200, n_big: int = 200) -> tuple[pd.DataFrame, dict]:
    """A year of invoices: small-basket buyers (A) and big-basket buyers (B) with the same
    rhythm; exactly ``PLANTED_SHARE`` of A buy like B from ``PLANT_DATE`` on.

    Returns the cleaned lines and the customer ids of each planted group.
    """
    rng = np.random.default_rng(seed)
    days = pd.date_range("2011-01-01", "2011-12-31", freq="D")
    migrants = set(range(1000, 1000 + int(PLANTED_SHARE * n_small)))
    groups = {"small": list(range(1000, 1000 + n_small)), "big": list(range(5000, 5000 + n_big)),
              "migrants": sorted(migrants)}
    rows, invoice = [], 100000
    for customer in groups["small"] + groups["big"]:
        bought = rng.random(len(days)) < 1 / 12
        bought[rng.integers(0, 20)] = True  # everyone is a customer from January
        for day in days[bought]:
            big = customer >= 5000 or (customer in migrants and day >= PLANT_DATE)
            quantity, price = (int(rng.integers(80, 120)), 5.0) if big else (int(rng.integers(1, 4)), 2.0)
            invoice += 1
            when = day + pd.Timedelta(hours=int(rng.integers(8, 18)))
            rows.append((str(invoice), "P1", quantity, when.isoformat(), price, customer, "United Kingdom"))
    return clean_lines(rows).sort_values("invoice_date", kind="stable").reset_index(drop=True), groups


def fit_run(transactions: pd.DataFrame, clusterer, parts=None):
    """A run in miniature: fitted union, features, fitted segmenter and its fit_predict labels."""
    parts = parts or [("rfm", RFMFeatures())]
    union = FeatureUnion(parts).set_output(transform="pandas")
    features = union.fit_transform(transactions).sort_index()
    segmenter = make_pipeline(StandardScaler(), FunctionTransformer(), clusterer)
    labels = pd.Series(segmenter.fit_predict(features.to_numpy()), index=features.index)
    return union, features, segmenter, labels


@pytest.fixture(scope="module")
def planted():
    transactions, groups = planted_shop()
    union, _, segmenter, labels = fit_run(transactions, KMeans(2, n_init=10, random_state=0))
    settings = DynamicsSettings(churn_days=60, n_bootstrap=20)
    tracker = SegmentTracker(union, segmenter, settings).fit(transactions, labels)
    return transactions, groups, labels, tracker, tracker.track(transactions)


def test_snapshot_dates_step_back_from_the_end_and_keep_the_history():
    start, end = pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2011-12-10")
    monthly = snapshot_dates(start, end, "month", min_history_days=90)
    assert monthly[-1] == end and monthly[0] == pd.Timestamp("2011-03-10")
    assert (monthly[0] - start.normalize()).days >= 90 > (monthly[0] - pd.DateOffset(months=1)
                                                          - start.normalize()).days
    assert list(snapshot_dates(start, end, "quarter", 90).month) == [3, 6, 9, 12]
    thirty = snapshot_dates(start, end, "30d", 300)
    assert list(np.diff(thirty).astype("timedelta64[D]").astype(int)) == [30, 30]


@pytest.mark.parametrize("every", ["fortnight", "0d", "d", "month "])
def test_bad_period_names_the_option(every):
    if every == "month ":
        assert parse_every(every) == pd.DateOffset(months=1)  # surrounding space is harmless
        return
    with pytest.raises(ValueError, match="every must be 'month', 'quarter' or '<N>d'"):
        parse_every(every)


def test_too_short_a_history_is_one_clear_error():
    with pytest.raises(DataError, match="fewer than two snapshots every quarter"):
        snapshot_dates(pd.Timestamp("2011-01-01"), pd.Timestamp("2011-06-01"), "quarter", 90)


def test_features_at_a_date_see_only_earlier_lines_and_measure_from_the_date(transactions):
    union = FeatureUnion([("rfm", RFMFeatures(log=False)), ("behaviour", BehaviourFeatures())])
    union.set_output(transform="pandas").fit(transactions)
    date = pd.Timestamp("2011-06-15")
    frame = features_at(union, transactions, date)
    before = transactions[(transactions["invoice_date"] < date) & ~transactions["is_return"]]
    by = before.groupby("customer_id")
    assert list(frame.index) == sorted(before["customer_id"].unique())
    expected_recency = (date - by["invoice_date"].max().dt.normalize()).dt.days
    expected_tenure = (date - by["invoice_date"].min().dt.normalize()).dt.days
    assert np.array_equal(frame["rfm__recency_days"], expected_recency.astype(float))
    assert np.array_equal(frame["behaviour__tenure_days"], expected_tenure.astype(float))
    assert np.array_equal(frame["rfm__frequency"], by["invoice_no"].nunique().astype(float))
    # The run's fitted union is untouched: it still measures from the end of the data.
    assert union.transformer_list[0][1].snapshot_date_ > date


def test_undated_feature_sets_describe_only_the_lines_before_the_date(transactions):
    from segmentlab.features.tfidf import TfidfCategoryFeatures
    from segmentlab.features.word2vec import Word2VecProductFeatures

    union = FeatureUnion([
        ("tfidf", TfidfCategoryFeatures(n_categories=3, min_df=1, svd_components=0, random_state=0)),
        ("word2vec", Word2VecProductFeatures(vector_size=4, min_count=1, epochs=2, evaluate=False,
                                             seed=0))]).set_output(transform="pandas").fit(transactions)
    date = pd.Timestamp("2011-05-01")
    before = transactions[transactions["invoice_date"] < date]
    expected = union.transform(before)
    got = features_at(union, transactions, date)
    pd.testing.assert_frame_equal(got, expected.reindex(got.index).astype(float))
    assert not np.allclose(got.to_numpy(), union.transform(transactions).reindex(got.index).to_numpy())


CLUSTERERS = {
    "kmeans": lambda: KMeans(3, n_init=10, random_state=0),
    "gmm": lambda: GaussianMixture(3, random_state=0),
    "dbscan": lambda: DBSCAN(eps=2.5, min_samples=4),
    "agglomerative": lambda: AgglomerativeClustering(3),
    "sampled_agglomerative": lambda: SampledAgglomerative(3, max_samples=25, random_state=0),
    "hdbscan": lambda: HDBSCAN(min_cluster_size=5, copy=True),
    "hdbscan_library": lambda: __import__("hdbscan").HDBSCAN(min_cluster_size=5, min_samples=3,
                                                                      core_dist_n_jobs=1),
}


@pytest.mark.parametrize("name", list(CLUSTERERS))
def test_fitted_segmenter_on_its_own_window_reproduces_the_run_labels(transactions, name):
    parts = [("rfm", RFMFeatures()), ("behaviour", BehaviourFeatures())]
    union, features, segmenter, labels = fit_run(transactions, CLUSTERERS[name](), parts)
    labeller = SnapshotLabeller(segmenter).fit(features, labels)
    assert labeller.uses_predict_ == (name in ("kmeans", "gmm"))
    end = transactions["invoice_date"].max().normalize() + pd.Timedelta(days=1)
    again = labeller.predict(features_at(union, transactions, end))
    assert labels.nunique() >= 2
    pd.testing.assert_series_equal(again, labels.rename("segment"), check_index_type=False,
                                   check_dtype=False)
    settings = DynamicsSettings(every="quarter", n_bootstrap=0, min_history_days=60)
    tracker = SegmentTracker(union, segmenter, settings)
    result = tracker.fit(transactions, labels).track(transactions)
    assert result.metrics["dynamics/fit_window_agreement"] == 1.0


def test_one_nearest_neighbour_keeps_noise_noise_and_tells_duplicates_apart():
    rng = np.random.default_rng(0)
    blobs = np.vstack([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (30, 2)), [[20.0, 20.0]]])
    features = pd.DataFrame(blobs, columns=["a", "b"], index=pd.RangeIndex(61, name="customer_id"))
    segmenter = make_pipeline(FunctionTransformer(), DBSCAN(eps=0.5, min_samples=3))
    labels = pd.Series(segmenter.fit_predict(blobs), index=features.index)
    assert labels.iloc[-1] == -1 and labels.iloc[0] != labels.iloc[30]
    labeller = SnapshotLabeller(segmenter).fit(features, labels)
    new = pd.DataFrame([[0.05, 0.0], [5.1, 4.9], [19.0, 19.5]], columns=["a", "b"], index=[900, 901, 902])
    assert labeller.predict(new).tolist() == [labels.iloc[0], labels.iloc[30], -1]
    # Two customers at the same point with different labels (as sampled agglomerative can give):
    # each keeps its own while its features are unchanged; a stranger there takes the first.
    twins = pd.DataFrame([[1.0, 1.0], [1.0, 1.0], [9.0, 9.0]], columns=["a", "b"], index=[1, 2, 3])
    labeller = SnapshotLabeller(make_pipeline(FunctionTransformer(), DBSCAN())).fit(
        twins, pd.Series([0, 1, 1], index=[1, 2, 3]))
    assert labeller.predict(twins).tolist() == [0, 1, 1]
    assert labeller.predict(twins.iloc[[1]].set_axis([7])).tolist() == [0]


def test_states_are_explicit_and_every_customer_is_accounted_for():
    rows = [("1", "P", 1, "2011-01-03 10:00", 10.0, 1, "UK"),     # buys once, then lapses
            ("2", "P", 1, "2011-01-04 10:00", 10.0, 2, "UK"),     # buys all year
            ("3", "P", 1, "2011-05-02 10:00", 10.0, 2, "UK"),
            ("4", "P", 1, "2011-05-20 10:00", 10.0, 3, "UK"),     # first purchase in May
            ("C5", "P", -1, "2011-02-01 10:00", 10.0, 4, "UK"),   # only ever returned something
            ("6", "P", 1, "2011-08-30 10:00", 10.0, 2, "UK")]
    lines = clean_lines(rows)
    union = FeatureUnion([("rfm", RFMFeatures())]).set_output(transform="pandas").fit(lines)
    features = union.transform(lines)
    segmenter = make_pipeline(FunctionTransformer(), KMeans(1, n_init=1, random_state=0))
    labels = pd.Series(segmenter.fit_predict(features.to_numpy()), index=features.index)
    labeller = SnapshotLabeller(segmenter).fit(features, labels)
    dates = pd.DatetimeIndex(["2011-03-01", "2011-06-01", "2011-08-31"])
    snaps = take_snapshots(lines, union, labeller, dates, parse_every("quarter"), churn_days=120)
    paths = snaps.paths()
    assert list(paths.index) == [1, 2, 3] and snaps.dropped == {"returns_only": 1}
    assert paths.loc[1].tolist() == ["0", CHURNED, CHURNED]  # 57 days, then 149 and 240: > 120
    assert paths.loc[2].tolist() == ["0", "0", "0"]
    assert paths.loc[3].tolist() == [NOT_YET, "0", "0"]       # 103 days at the last date: not > 120
    at_end = snaps.at(dates[-1])
    assert at_end.loc[3, "recency_days"] == 103 and at_end.loc[1, "segment"] == 0  # churned keeps it
    assert pd.isna(snaps.at(dates[0]).loc[3, "segment"])
    assert list(snaps.states.columns) == ["customer_id", "date", "state", "segment", "recency_days"]
    with pytest.raises(ValueError, match="churn_days must be at least 1"):
        take_snapshots(lines, union, labeller, dates, parse_every("quarter"), churn_days=0)


def test_planted_migration_is_recovered_within_five_points(planted):
    transactions, groups, labels, tracker, result = planted
    first, last = result.snapshots.dates[0], result.snapshots.dates[-1]
    assert first < PLANT_DATE
    paths = result.snapshots.paths()
    small_state = paths.loc[groups["small"], first].mode()[0]
    big_state = paths.loc[groups["big"], first].mode()[0]
    assert small_state != big_state
    flows = flow_table(result.snapshots, transactions, first, last)
    shares = migration_matrix(flows, result.ranks, "share")
    assert abs(shares.loc[small_state, big_state] - PLANTED_SHARE) <= 0.05
    assert shares.loc[big_state, small_state] <= 0.05
    # Each migrant crosses once: the consecutive A -> B flows add up to the planted share.
    consecutive = result.flows[result.flows["pair"] == "consecutive"]
    crossed = consecutive.loc[(consecutive["from"] == small_state) & (consecutive["to"] == big_state),
                              "customers"].sum()
    assert abs(crossed / len(groups["small"]) - PLANTED_SHARE) <= 0.05
    # Before the planted date nobody moves.
    early = [d for d in result.snapshots.dates if d <= PLANT_DATE]
    before = flow_table(result.snapshots, transactions, early[0], early[-1])
    assert migration_matrix(before, result.ranks, "share").loc[small_state, small_state] >= 0.95


def test_value_order_and_rates(planted):
    transactions, groups, labels, tracker, result = planted
    values = tracker.values_
    big = labels.loc[groups["big"]].mode()[0]
    assert values.loc[big, "value_rank"] == 1 and values["value_rank"].min() == 0
    ranks = state_ranks(values)
    assert ranks[CHURNED] < min(r for s, r in ranks.items() if s != CHURNED)
    m = result.metrics
    total = m["dynamics/stay_rate"] + m["dynamics/upgrade_rate"] + m["dynamics/downgrade_rate"] \
        + m["dynamics/churn_rate"]
    assert total == pytest.approx(1.0)  # no noise with k-means
    assert m["dynamics/upgrade_rate"] > m["dynamics/downgrade_rate"]
    small = str(1 - big)
    assert m[f"dynamics/stay_rate_{small}"] < m[f"dynamics/stay_rate_{big}"]
    assert set(migration_metrics(result.snapshots, ranks)) == {k for k in m if k.startswith(
        ("dynamics/stay", "dynamics/upgrade", "dynamics/downgrade", "dynamics/churn"))}


def test_matrix_rows_sum_to_one_and_revenue_adds_up(planted):
    transactions, _, _, _, result = planted
    flows = all_flows(result.snapshots, transactions)
    for (date_from, date_to, _), pair in flows.groupby(["date_from", "date_to", "pair"]):
        shares = migration_matrix(pair, result.ranks, "share")
        assert np.allclose(shares.sum(axis=1), 1.0)
        counts = migration_matrix(pair, result.ranks, "customers")
        assert counts.to_numpy().sum() == result.snapshots.at(date_from).shape[0]
        stop = date_to + result.snapshots.step
        if pair["revenue_complete"].iloc[0]:
            expected = spend_between(transactions, date_to, stop).sum()
            assert pair["revenue_next"].sum() == pytest.approx(expected)
            assert expected > 0
        else:
            assert stop > result.snapshots.end and pair["revenue_next"].isna().all()


def test_segment_values_rank_by_trailing_median():
    rows = [(str(i), "P", q, "2011-06-01 10:00", 1.0, c, "UK")
            for i, (q, c) in enumerate([(10, 1), (12, 2), (500, 3), (700, 4), (30, 5)])]
    lines = clean_lines(rows)
    labels = pd.Series([0, 0, 1, 1, -1], index=[1, 2, 3, 4, 5])
    values = segment_values(lines, labels, pd.Timestamp("2011-06-02"), window_days=365)
    assert values.loc[0, "trailing_spend_median"] == 11 and values.loc[1, "value_rank"] == 1
    assert np.isnan(values.loc[-1, "value_rank"])
    assert state_ranks(values) == {"0": 0.0, "1": 1.0, CHURNED: -1.0}


def test_labeller_rejects_features_without_labels(transactions):
    union, features, segmenter, labels = fit_run(transactions, KMeans(2, n_init=2, random_state=0))
    with pytest.raises(ValueError, match="labels: 3 feature rows have no label"):
        SnapshotLabeller(segmenter).fit(features, labels.iloc[3:])
    labeller = SnapshotLabeller(segmenter).fit(features, labels)
    with pytest.raises(ValueError, match="features lack 1 fit columns"):
        labeller.predict(features.drop(columns="rfm__frequency"))


@pytest.mark.real_data
@pytest.mark.skipif(real_data_path() is None, reason="SEGMENTLAB_DATA is not set")
def test_real_file_monthly_snapshots_keep_the_run_labels(tmp_path):
    from segmentlab.data.cleaning import TransactionCleaner
    from segmentlab.data.loading import OnlineRetailFile, load_dataset

    dataset = load_dataset(OnlineRetailFile(real_data_path()), TransactionCleaner(),
                           cache_dir=str(tmp_path / "cache"))
    parts = [("rfm", RFMFeatures()), ("behaviour", BehaviourFeatures())]
    union, _, segmenter, labels = fit_run(dataset.transactions, KMeans(6, n_init=10, random_state=42),
                                          parts)
    result = SegmentTracker(union, segmenter, DynamicsSettings(n_bootstrap=20)).fit(
        dataset.transactions, labels).track(dataset.transactions)
    assert result.metrics["dynamics/fit_window_agreement"] == 1.0
    assert len(result.snapshots.dates) == 10 and result.snapshots.dropped["returns_only"] > 0
    consecutive = result.flows[result.flows["pair"] == "consecutive"]
    assert np.allclose(consecutive.groupby(["date_from", "from"])["share"].sum(), 1.0)
    assert 0.5 < result.metrics["dynamics/recency_auc"] < 0.9


@pytest.mark.parametrize(("override", "message"), [
    ({"every": "weekly"}, "dynamics.every must be 'month', 'quarter' or '<N>d'"),
    ({"churn_days": 0}, "dynamics.churn_days must be an integer >= 1, got 0"),
    ({"min_history_days": -5}, "dynamics.min_history_days must be an integer >= 0"),
    ({"n_bootstrap": 1.5}, "dynamics.n_bootstrap must be an integer >= 0"),
    ({"risk_words": "at-risk"}, "dynamics.risk_words must be a list of words"),
])
def test_bad_settings_name_their_config_key(override, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DynamicsSettings(**override)
    assert DynamicsSettings(risk_words=["lapsing"]).risk_words == ("lapsing",)


def test_the_config_builds_the_settings():
    from segmentlab.study.experiment import assemble
    from tests.conftest import compose_config

    assert assemble(compose_config("seed=7")).dynamics == DynamicsSettings(random_state=7)
    assert assemble(compose_config("dynamics.every=quarter")).dynamics.every == "quarter"


def test_a_pickled_tracker_follows_newer_data(planted):
    import pickle

    transactions, groups, _, _, _ = planted
    early = transactions[transactions["invoice_date"] < pd.Timestamp("2011-10-01")]
    union, _, segmenter, labels = fit_run(early, KMeans(2, n_init=10, random_state=0))
    tracker = SegmentTracker(union, segmenter, DynamicsSettings(n_bootstrap=0)).fit(early, labels)
    later = pickle.loads(pickle.dumps(tracker)).track(transactions)
    assert later.snapshots.dates[-1] == pd.Timestamp("2012-01-01") > tracker.end_
    assert "dynamics/fit_window_agreement" not in later.metrics
    # Segments keep their fit-time meaning on the new lines: the big buyers stay in one segment.
    big = later.snapshots.paths().loc[groups["big"], later.snapshots.dates[-1]]
    assert big.value_counts(normalize=True).iloc[0] >= 0.95
    assert list(later.warnings.columns)[:4] == ["customer_id", "date", "from", "to"]
