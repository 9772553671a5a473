"""Product-similarity feature sets: TF-IDF categories and word2vec product vectors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from segmentlab.features.tfidf import TfidfCategoryFeatures
from segmentlab.features.word2vec import (
    Word2VecProductFeatures,
    evaluate_product_embeddings,
    product_sentences,
)
from segmentlab.schema import (
    AMOUNT,
    CLEAN_COLUMNS,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    QUANTITY,
    STOCK_CODE,
    UNIT_PRICE,
)

# Three product families with disjoint vocabularies; colour words are shared across families
# so that only dropping them lets the clustering find the families.
FAMILIES = {
    "bag": ["lunch bag", "jumbo shopper bag", "tote bag canvas", "lunch bag cotton"],
    "candle": ["scented candle jar", "candle holder glass", "tea light candle", "candle jar wax"],
    "card": ["birthday greeting card", "christmas card pack", "greeting card wrap",
             "birthday card pack"],
}
COLOURS = ["red", "blue", "pink", "white"]
START = pd.Timestamp("2011-01-01")


def make_transactions(n_customers: int = 60, seed: int = 0, start_day: int = 0,
                      days: int = 120, extra_family: dict[str, list[str]] | None = None,
                      ) -> pd.DataFrame:
    """Invoices where each customer mostly buys from one family (their planted taste)."""
    rng = np.random.default_rng(seed)
    families = {**FAMILIES, **(extra_family or {})}
    catalogue = [(f"{10000 + 100 * f + i}{'ABCD'[c]}", f"{COLOURS[c]} {name}", fam)
                 for f, (fam, names) in enumerate(families.items())
                 for i, name in enumerate(names) for c in range(2)]
    by_family = {fam: [p for p in catalogue if p[2] == fam] for fam in families}
    rows, invoice = [], 500000 + 10000 * seed
    for customer in range(n_customers):
        taste = list(families)[customer % len(families)]
        for _ in range(rng.integers(2, 5)):
            invoice += 1
            when = START + pd.Timedelta(days=int(start_day + rng.integers(0, days)))
            picks = [by_family[taste][i] for i in rng.choice(len(by_family[taste]), 3)]
            picks.append(catalogue[rng.integers(len(catalogue))])  # some cross-family noise
            for code, desc, _ in picks:
                rows.append((str(invoice), code, desc.upper(), int(rng.integers(1, 12)), when,
                             float(rng.choice([0.85, 1.65, 2.95])), 12000 + customer,
                             "United Kingdom"))
    frame = pd.DataFrame(rows, columns=CLEAN_COLUMNS[:8])
    frame[AMOUNT] = frame[QUANTITY] * frame[UNIT_PRICE]
    frame[IS_RETURN] = False
    # One cancellation line: must not count as buying.
    ret = frame.iloc[[0]].assign(**{INVOICE_NO: "C" + frame[INVOICE_NO].iloc[0], QUANTITY: -2,
                                    IS_RETURN: True})
    ret[AMOUNT] = ret[QUANTITY] * ret[UNIT_PRICE]
    return pd.concat([frame, ret], ignore_index=True)


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return make_transactions()


def small_w2v(**kw) -> Word2VecProductFeatures:
    params = dict(vector_size=8, epochs=20, min_count=1, window=5, evaluate=False)
    return Word2VecProductFeatures(**{**params, **kw})


def small_tfidf(**kw) -> TfidfCategoryFeatures:
    return TfidfCategoryFeatures(**{"n_categories": 3, "min_df": 1, "n_init": 3, **kw})


SETS = {
    "tfidf": small_tfidf,
    "tfidf_char": lambda: small_tfidf(analyzer="char_wb", ngram_range=[3, 4],
                                      svd_components=None),
    "word2vec": small_w2v,
    "word2vec_cat": lambda: small_w2v(n_categories=3),
}


@pytest.fixture(params=list(SETS), scope="module")
def fitted(request, transactions):
    model = SETS[request.param]().fit(transactions)
    return model, model.transform(transactions)


def test_contract(fitted, transactions):
    model, features = fitted
    buyers = transactions.loc[~transactions[IS_RETURN], CUSTOMER_ID].unique()
    assert features.index.name == CUSTOMER_ID
    assert features.index.is_unique and features.index.dtype == np.int64
    assert set(features.index) == set(buyers)
    assert not features.isna().any().any()
    assert all(dtype == np.float64 for dtype in features.dtypes)
    assert list(features.columns) == list(model.get_feature_names_out())


def test_clone_round_trips(fitted):
    model, _ = fitted
    assert clone(model).get_params() == model.get_params()


@pytest.mark.parametrize("name", ["tfidf", "word2vec_cat"])
def test_category_shares_sum_to_one(name, transactions):
    features = SETS[name]().fit(transactions).transform(transactions)
    shares = features.filter(like="cat_")
    assert shares.shape[1] == 3
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert (shares >= 0).all().all()


def test_tfidf_categories_are_the_families_without_colours(transactions):
    model = small_tfidf().fit(transactions)
    cats = model.product_categories_
    # Keys are cleaned descriptions (no colour, no size); each family maps to one category.
    family = [next(f for f in FAMILIES if f in text.split()) for text in cats.index]
    by_family = pd.Series(cats.to_numpy(), index=family)
    assert by_family.groupby(level=0).nunique().eq(1).all()
    assert by_family.groupby(level=0).first().nunique() == 3
    assert not any(c in " ".join(cats.index).split() for c in COLOURS)


def test_tfidf_report(transactions):
    model = small_tfidf().fit(transactions)
    metrics, tables = model.report()
    assert metrics["products/n_categories"] == 3
    assert 0 < metrics["products/silhouette"] <= 1  # families are well separated
    table = tables["tfidf_categories"]
    assert len(table) == 3 and table["size"].sum() == len(model.product_categories_)
    np.testing.assert_allclose(table["spend_share"].sum(), 1.0)
    assert any("candle" in lab.split("|") for lab in table["label"])


def test_fit_on_one_window_transform_another(transactions):
    # A later window with a new family and some new customers: unseen descriptions and codes.
    later = make_transactions(n_customers=80, seed=1, start_day=200,
                              extra_family={"mug": ["coffee mug", "tea mug"]})
    for name in ["tfidf", "word2vec_cat"]:
        model = SETS[name]().fit(transactions)
        state = {k: v for k, v in vars(model).items() if k.endswith("_")}
        features = model.transform(later)
        assert set(features.index) == set(later.loc[~later[IS_RETURN], CUSTOMER_ID])
        assert not features.isna().any().any()
        # transform learns nothing: fitted state is unchanged
        for key, value in state.items():
            assert vars(model)[key] is value
    tfidf = small_tfidf().fit(transactions).transform(later)
    np.testing.assert_allclose(tfidf.sum(axis=1), 1.0)  # unseen products still get a category


def test_word2vec_unseen_products_give_zeros(transactions):
    model = small_w2v().fit(transactions)
    unseen = transactions[transactions[CUSTOMER_ID] == 12000].assign(**{STOCK_CODE: "99999"})
    seen = transactions[transactions[CUSTOMER_ID] == 12001]
    features = model.transform(pd.concat([unseen, seen]))
    assert (features.loc[12000] == 0).all()
    assert (features.loc[12001] != 0).any()


def test_word2vec_spend_weighted_mean(transactions):
    model = small_w2v().fit(transactions)
    one = transactions[(transactions[CUSTOMER_ID] == 12003) & ~transactions[IS_RETURN]]
    vectors = model.product_vectors_.loc[one[STOCK_CODE]].to_numpy()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = (unit * one[AMOUNT].to_numpy()[:, None]).sum(axis=0) / one[AMOUNT].sum()
    np.testing.assert_allclose(model.transform(one).loc[12003], expected, rtol=1e-6)


def test_customer_sentences_are_time_ordered(transactions):
    shuffled = transactions.sample(frac=1.0, random_state=3)
    purchases = shuffled[~shuffled[IS_RETURN]]
    sentences = product_sentences(purchases, "customer")
    assert len(sentences) == purchases[CUSTOMER_ID].nunique()
    first = purchases.sort_values([CUSTOMER_ID, INVOICE_DATE, INVOICE_NO], kind="stable")
    assert sentences[0] == first[first[CUSTOMER_ID] == 12000][STOCK_CODE].tolist()
    # Invoice order in the frame does not matter; line order within an invoice is kept.
    reordered = purchases.sort_values(INVOICE_NO, ascending=False, kind="stable")
    assert product_sentences(reordered) == product_sentences(purchases)


_SCRIPT = """
import json, sys
import pandas as pd
from segmentlab.features.word2vec import Word2VecProductFeatures
frame = pd.read_parquet(sys.argv[1])
model = Word2VecProductFeatures(vector_size=8, epochs=5, evaluate=False).fit(frame)
print(json.dumps({"index": model.product_vectors_.index.tolist(),
                  "vectors": model.product_vectors_.to_numpy().tolist()}))
"""


def test_word2vec_identical_across_processes(transactions, tmp_path):
    path = tmp_path / "tx.parquet"
    transactions.to_parquet(path)
    outputs = []
    for hash_seed in ["1", "2"]:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", _SCRIPT, str(path)], env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert outputs[0]["index"] == outputs[1]["index"]
    assert np.array_equal(np.array(outputs[0]["vectors"]), np.array(outputs[1]["vectors"]))


def test_same_seed_same_output(transactions):
    a = small_w2v().fit(transactions).transform(transactions)
    b = small_w2v().fit(transactions).transform(transactions)
    pd.testing.assert_frame_equal(a, b)
    c = small_w2v(seed=7).fit(transactions).transform(transactions)
    assert not np.allclose(a.to_numpy(), c.to_numpy())


def _baskets(items_by_day: dict[int, list[list[str]]]) -> pd.DataFrame:
    """Purchase lines from {day: [basket, ...]} with unit amounts."""
    rows = [(f"{day}{n:03d}", code, "", 1, START + pd.Timedelta(days=day), 1.0, 1, "X")
            for day, baskets in items_by_day.items() for n, basket in enumerate(baskets)
            for code in basket]
    frame = pd.DataFrame(rows, columns=[INVOICE_NO, STOCK_CODE, DESCRIPTION, QUANTITY,
                                        INVOICE_DATE, UNIT_PRICE, CUSTOMER_ID, COUNTRY])
    return frame.assign(**{AMOUNT: 1.0, IS_RETURN: False})


def test_evaluation_on_a_known_case():
    # Pairs (a_i, b_i) always bought together; the oracle embedding puts each pair on its own
    # axis, so the partner of the visible item ranks first. Popularity is uninformative:
    # "hub" is the most popular item but never in an evaluation basket.
    n = 12
    pairs = [[f"100{i:02d}A", f"100{i:02d}B"] for i in range(n)]
    train = {0: [*pairs, *[["hub"]] * 30]}
    later = {100: pairs}
    frame = _baskets({**train, **later})
    codes = [c for p in pairs for c in p] + ["hub"]
    oracle = pd.DataFrame(0.0, index=codes, columns=range(n + 1))
    for i, (a, b) in enumerate(pairs):
        oracle.loc[[a, b], i] = 1.0
    oracle.loc["hub", n] = 1.0
    seen = []

    def make_model(train_lines: pd.DataFrame) -> pd.DataFrame:
        seen.append(train_lines[INVOICE_DATE].max())
        return oracle

    metrics = evaluate_product_embeddings(frame, make_model, holdout_days=30, k=1)
    assert seen == [START]  # the model only saw the training window
    assert metrics["products/hit_rate_at_1"] == 1.0
    assert metrics["products/popularity_hit_rate_at_1"] == 0.0
    assert metrics["products/n_eval_baskets"] == n
    assert metrics["products/variant_pair_median_rank"] == 1.0  # A/B variants are neighbours
    assert metrics["products/n_variant_pairs"] == 2 * n

    # A useless embedding (every vector equal) ties everything: hit only by the tie share.
    flat = pd.DataFrame(1.0, index=codes, columns=[0])
    metrics = evaluate_product_embeddings(frame, lambda _: flat, holdout_days=30, k=10)
    assert metrics["products/hit_rate_at_10"] == 0.0  # 24 tied candidates, mid-rank 11.5
    assert metrics["products/popularity_hit_rate_at_10"] == 0.0


def test_evaluation_basket_cap_and_excludes_basket_items():
    frame = _baskets({0: [["a", "b", "c"]] * 5, 100: [["a", "b", "c"]] * 40})
    vectors = pd.DataFrame({"x": [1.0, 0.9, 0.1], "y": [0.0, 0.1, 1.0]}, index=["a", "b", "c"])
    metrics = evaluate_product_embeddings(frame, lambda _: vectors, holdout_days=30, k=1,
                                          max_baskets=7)
    assert metrics["products/n_eval_baskets"] == 7
    # Only the hidden item remains once the other two are excluded: always rank 0.
    assert metrics["products/hit_rate_at_1"] == 1.0
    assert metrics["products/popularity_hit_rate_at_1"] == 1.0


def test_word2vec_report_runs_evaluation():
    frame = make_transactions(n_customers=60, days=200)
    model = small_w2v(evaluate=True, holdout_days=60, eval_k=3).fit(frame)
    metrics, _ = model.report(frame)
    assert metrics["products/n_eval_baskets"] > 0
    for key in ["products/hit_rate_at_3", "products/popularity_hit_rate_at_3"]:
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["products/n_products"] == len(model.product_vectors_)


def test_evaluation_without_training_window_is_nan(transactions):
    called = []
    metrics = evaluate_product_embeddings(transactions, called.append, holdout_days=10_000)
    assert not called
    assert np.isnan(metrics["products/hit_rate_at_10"])
    assert metrics["products/n_eval_baskets"] == 0
    # and the feature set still fits, reporting NaN rather than failing
    model = small_w2v(evaluate=True, holdout_days=10_000).fit(transactions)
    assert np.isnan(model.report(transactions)[0]["products/popularity_hit_rate_at_10"])
