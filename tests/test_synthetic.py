"""The synthetic source: layout, determinism, realistic noise and recoverable planted structure."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler, normalize

from segmentlab.cache import stable_hash
from segmentlab.data.synthetic import (
    FAMILIES,
    FAMILY,
    GENERATOR_VERSION,
    SEGMENTS,
    TIME_PARAMS,
    SyntheticTransactions,
)
from segmentlab.schema import (
    AMOUNT,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    QUANTITY,
    RAW_COLUMNS,
    STOCK_CODE,
    UNIT_PRICE,
)

PRODUCT_CODE = r"^\d{5}[A-Z]?$"


@pytest.fixture(scope="module")
def source() -> SyntheticTransactions:
    return SyntheticTransactions()  # default size: what `python run.py` uses


@pytest.fixture(scope="module")
def raw(source) -> pd.DataFrame:
    return source.read()


@pytest.fixture(scope="module")
def small() -> SyntheticTransactions:
    return SyntheticTransactions(n_customers=150, n_lines=8_000, seed=3)


def _is_cancel(frame: pd.DataFrame) -> pd.Series:
    return frame[INVOICE_NO].str.startswith("C")


def _clean_purchases(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(purchases, cancellation lines) of customers with an id, product codes only."""
    known = raw[raw[CUSTOMER_ID].notna()].astype({CUSTOMER_ID: "int64"})
    product = known[STOCK_CODE].str.match(PRODUCT_CODE)
    cancel = _is_cancel(known)
    purchases = known[product & ~cancel & (known[QUANTITY] > 0) & (known[UNIT_PRICE] > 0)]
    return purchases, known[product & cancel]


def _simple_features(raw: pd.DataFrame) -> pd.DataFrame:
    purchases, cancels = _clean_purchases(raw)
    snapshot = purchases[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)
    by_customer = purchases.groupby(CUSTOMER_ID)
    invoices = by_customer[INVOICE_NO].nunique()
    baskets = purchases.groupby([CUSTOMER_ID, INVOICE_NO])[AMOUNT].sum().groupby(CUSTOMER_ID)
    returns = cancels.groupby(CUSTOMER_ID).size().reindex(invoices.index, fill_value=0)
    return pd.DataFrame({
        "log_recency": np.log1p((snapshot - by_customer[INVOICE_DATE].max()).dt.days),
        "log_invoices": np.log(invoices),
        "log_spend": np.log(by_customer[AMOUNT].sum()),
        "log_basket": np.log(baskets.mean()),
        "log_quantity": np.log(by_customer[QUANTITY].mean()),
        "return_rate": returns / by_customer.size(),
    })


def test_columns_and_dtypes_match_the_loader(raw):
    assert list(raw.columns) == RAW_COLUMNS
    text = pd.Series(["x"]).dtype  # the default string dtype, as the file loader returns
    for column in [INVOICE_NO, STOCK_CODE, DESCRIPTION, COUNTRY]:
        assert raw[column].dtype == text, column
    assert raw[QUANTITY].dtype == np.int64
    assert raw[INVOICE_DATE].dtype == "datetime64[ns]"
    assert raw[UNIT_PRICE].dtype == np.float64
    assert raw[CUSTOMER_ID].dtype == "Int64"
    assert raw[AMOUNT].dtype == np.float64
    np.testing.assert_allclose(raw[AMOUNT], raw[QUANTITY] * raw[UNIT_PRICE])
    assert isinstance(raw.index, pd.RangeIndex)


def test_truth_labels_exactly_the_customers_with_ids(source, raw):
    truth = source.truth()
    assert truth.name == "segment" and truth.index.name == CUSTOMER_ID
    assert truth.index.dtype == np.int64 and truth.index.is_unique
    assert truth.dtype == pd.Series(["x"]).dtype
    assert set(truth.index) == set(raw[CUSTOMER_ID].dropna().astype("int64"))
    assert len(truth) == source.n_customers
    assert set(truth) == {s.name for s in SEGMENTS}
    shares = truth.value_counts(normalize=True)
    for profile in SEGMENTS:
        assert shares[profile.name] == pytest.approx(profile.share, abs=0.01)
    assert raw[CUSTOMER_ID].isna().mean() == pytest.approx(source.missing_customer_rate, abs=0.05)


def test_same_seed_same_data_and_other_seed_other_data(small):
    again = SyntheticTransactions(n_customers=150, n_lines=8_000, seed=3)
    pd.testing.assert_frame_equal(small.read(), again.read())
    pd.testing.assert_series_equal(small.truth(), again.truth())
    assert small.fingerprint() == again.fingerprint()
    other = SyntheticTransactions(n_customers=150, n_lines=8_000, seed=4)
    assert other.fingerprint() != small.fingerprint()
    assert not small.read().equals(other.read())


def test_fingerprint_hashes_every_parameter_and_the_version(small):
    params = small.get_params()
    # Time parameters at their defaults are left out: data made before they existed keep their hash.
    assert small.fingerprint() == stable_hash(
        {"generator": "synthetic", "version": GENERATOR_VERSION,
         **{k: v for k, v in params.items() if k not in TIME_PARAMS}})
    migration = [{"date": "2011-06-01", "from": "lapsing", "to": "seasonal_gift", "share": 0.5}]
    for name, value in [("n_products", 240), ("cancellation_rate", 0.05), ("end", "2011-11-30"),
                        ("segment_days", 200), ("seasonal_share", 0.2), ("season_months", 2),
                        ("migrations", migration)]:
        changed = SyntheticTransactions(**{**params, name: value})
        assert changed.fingerprint() != small.fingerprint(), name
    share = [{**migration[0], "share": 0.4}]
    assert (SyntheticTransactions(migrations=share).fingerprint()
            != SyntheticTransactions(migrations=migration).fingerprint())


def test_default_data_are_exactly_as_before_the_time_parameters(source, raw):
    # Digests of the default frames computed before segment_days, seasonal_share, season_months
    # and migrations existed: README figures and tests rely on these data.
    def digest(frame) -> str:
        return hashlib.sha256(pd.util.hash_pandas_object(frame).to_numpy().tobytes()).hexdigest()

    assert digest(raw) == "28fdeec6040e27dfa0d90f086a7c82db425541acedac14945504e74818906456"
    assert digest(source.truth()) == (
        "7fe2b3dcbe90f3639fd8a48fa5fd5febaa67290778f5b6678d14fda7b2b07791")
    assert digest(source.catalogue()) == (
        "20c78c0bd1084c00691096b3c0a9fe22ae585cc09fa71b003651e11943e2fa46")
    assert source.fingerprint() == "442ca5b852fed4b1"
    # The time parameters spelled out at their (off) values, as the YAML config passes them.
    off = SyntheticTransactions(segment_days=None, seasonal_share=0.0, season_months=3,
                                migrations=[])
    assert off.fingerprint() == source.fingerprint()
    pd.testing.assert_frame_equal(off.read(), raw)


def test_describe_names_size_seed_and_changed_parameters(small):
    assert SyntheticTransactions().describe() == (
        "synthetic(n_customers=2000, n_lines=150000, seed=42)")
    assert small.describe() == "synthetic(n_customers=150, n_lines=8000, seed=3)"
    assert "n_products=240" in SyntheticTransactions(n_products=240).describe()


def test_results_are_cached_and_callers_cannot_corrupt_them(small):
    first = small.read()
    first.loc[0, QUANTITY] = -999
    first["extra"] = 1
    second = small.read()
    assert second.loc[0, QUANTITY] != -999 and "extra" not in second
    assert small.read()[INVOICE_DATE].equals(second[INVOICE_DATE])


def test_changing_a_parameter_after_reading_regenerates():
    source = SyntheticTransactions(n_customers=100, n_lines=4_000, seed=1)
    before = source.read()
    source.n_customers = 50
    assert len(source.truth()) == 50
    assert not source.read().equals(before)


@pytest.mark.parametrize(("n_customers", "n_lines"), [(60, 3_000), (400, 12_000),
                                                      (500, 60_000), (3_000, 90_000)])
def test_size_is_close_to_the_request(n_customers, n_lines):
    source = SyntheticTransactions(n_customers=n_customers, n_lines=n_lines, seed=5)
    assert len(source.read()) == pytest.approx(n_lines, rel=0.10)
    assert len(source.truth()) == n_customers


def test_default_size_is_close_to_the_request(source, raw):
    assert len(raw) == pytest.approx(source.n_lines, rel=0.10)


def test_invoices_share_date_customer_and_country_and_follow_time(raw):
    per_invoice = raw.groupby(INVOICE_NO).agg(
        lines=(STOCK_CODE, "size"), dates=(INVOICE_DATE, "nunique"),
        customers=(CUSTOMER_ID, lambda s: s.nunique(dropna=False)), countries=(COUNTRY, "nunique"))
    assert (per_invoice[["dates", "customers", "countries"]] == 1).all().all()
    assert per_invoice["lines"].median() >= 3
    number = raw[INVOICE_NO].str.lstrip("C").astype(int)
    # Invoice numbers increase with time, as in the real file (rows are in number order).
    assert number.is_monotonic_increasing
    assert raw[INVOICE_DATE].is_monotonic_increasing
    assert raw[INVOICE_DATE].min() >= pd.Timestamp("2010-12-01")
    assert raw[INVOICE_DATE].max() < pd.Timestamp("2011-12-10")
    # The shop takes no orders on Saturdays, like the real one.
    assert not (raw[INVOICE_DATE].dt.day_of_week == 5).any()


def test_cancellations_reverse_earlier_purchases_of_the_same_customer(source, raw):
    cancel = _is_cancel(raw)
    assert ((raw[QUANTITY] < 0) == cancel).all()
    purchases = raw[~cancel & raw[STOCK_CODE].str.match(PRODUCT_CODE)]
    assert cancel.sum() / len(purchases) == pytest.approx(source.cancellation_rate, rel=0.3)
    keys = [CUSTOMER_ID, STOCK_CODE, UNIT_PRICE]
    cancels = raw[cancel & raw[CUSTOMER_ID].notna()].reset_index(names="row")
    pairs = cancels.merge(purchases[purchases[CUSTOMER_ID].notna()], on=keys,
                          suffixes=("", "_bought"))
    matched = pairs[(pairs[f"{INVOICE_DATE}_bought"] <= pairs[INVOICE_DATE])
                    & (pairs[f"{QUANTITY}_bought"] >= -pairs[QUANTITY])]
    assert set(matched["row"]) == set(cancels["row"])


def test_real_data_noise_is_present(raw):
    codes = raw[STOCK_CODE]
    assert {"POST", "DOT", "M"} <= set(codes[~codes.str.match(PRODUCT_CODE)])
    assert raw.duplicated().sum() > 0.005 * len(raw)
    assert 0 < (raw[UNIT_PRICE] == 0).sum() < 0.01 * len(raw)
    assert 0 < raw[DESCRIPTION].isna().sum() and raw.loc[raw[DESCRIPTION].isna(),
                                                         CUSTOMER_ID].isna().all()
    countries = raw[COUNTRY].value_counts(normalize=True)
    assert countries.index[0] == "United Kingdom" and countries.iloc[0] > 0.75
    assert {"Germany", "France", "EIRE"} <= set(countries.index)
    # Postage is charged to customers abroad.
    assert (raw.loc[codes == "POST", COUNTRY] != "United Kingdom").all()


def test_catalogue_looks_like_the_real_one(source, raw):
    catalogue = source.catalogue()
    assert len(catalogue) == source.n_products
    assert catalogue[STOCK_CODE].is_unique and catalogue[DESCRIPTION].is_unique
    assert catalogue[STOCK_CODE].str.match(PRODUCT_CODE).all()
    assert (catalogue[DESCRIPTION] == catalogue[DESCRIPTION].str.upper()).all()
    assert set(catalogue[FAMILY]) == set(FAMILIES)
    # Colour variants share the 5-digit code with a letter suffix (85123A, 85123B...).
    variants = catalogue[catalogue[STOCK_CODE].str.len() == 6]
    assert variants[STOCK_CODE].str[:5].duplicated().any()
    sold = raw[raw[STOCK_CODE].str.match(PRODUCT_CODE)]
    assert set(sold[STOCK_CODE]) <= set(catalogue[STOCK_CODE])
    # Family price levels differ: party goods are cheap, vintage furniture is not.
    median = catalogue.groupby(FAMILY)[UNIT_PRICE].median()
    assert median["party"] < median["bags"] < median["vintage"]


def test_descriptions_group_into_their_families(source):
    catalogue = source.catalogue()
    tfidf = TfidfVectorizer().fit_transform(catalogue[DESCRIPTION])
    reduced = normalize(TruncatedSVD(20, random_state=0).fit_transform(tfidf))
    labels = KMeans(len(FAMILIES), n_init=10, random_state=0).fit_predict(reduced)
    assert adjusted_rand_score(catalogue[FAMILY], labels) >= 0.7


def test_christmas_items_sell_in_the_fourth_quarter(source, raw):
    family = source.catalogue().set_index(STOCK_CODE)[FAMILY]
    lines = raw[raw[STOCK_CODE].isin(family.index) & (raw[QUANTITY] > 0)]
    christmas = lines[STOCK_CODE].map(family).eq("christmas")
    share = christmas.groupby(lines[INVOICE_DATE].dt.month).mean()
    assert share[11] > 5 * share[[2, 3, 4, 5, 6, 7]].max()


def test_segments_keep_their_defining_behaviour(source, raw):
    purchases, _ = _clean_purchases(raw)
    segment = purchases[CUSTOMER_ID].map(source.truth())
    end = raw[INVOICE_DATE].max()
    months = purchases[INVOICE_DATE].dt.month
    assert months[segment == "seasonal_gift"].isin([10, 11, 12]).all()
    assert (purchases.loc[segment == "lapsing", INVOICE_DATE] < end - pd.Timedelta(days=150)).all()
    invoices = purchases.groupby(CUSTOMER_ID)[INVOICE_NO].nunique().groupby(source.truth()).min()
    assert invoices["one_off_low_spender"] == 1 and invoices.drop("one_off_low_spender").min() > 1
    units = purchases.groupby(segment)[QUANTITY].median()
    assert units.idxmax() == "wholesale_bulk"
    abroad = purchases[COUNTRY].ne("United Kingdom").groupby(segment).mean()
    assert abroad.idxmax() == "wholesale_bulk"


def test_planted_segments_are_recoverable_from_simple_features(source, raw):
    features = _simple_features(raw)
    truth = source.truth()
    assert set(features.index) == set(truth.index)
    scaled = StandardScaler().fit_transform(features)
    labels = KMeans(truth.nunique(), n_init=10, random_state=0).fit_predict(scaled)
    assert adjusted_rand_score(truth.reindex(features.index), labels) >= 0.85


@pytest.mark.parametrize("params", [{"missing_customer_rate": 1.0}, {"n_customers": 0},
                                    {"n_products": 5}, {"end": "2010-12-10"}])
def test_impossible_parameters_are_refused(params):
    with pytest.raises(ValueError):
        SyntheticTransactions(**params).read()
