"""Cleaning raw invoice lines into purchases and returns, with a ledger of every dropped row.

Steps run in this fixed order; a row is counted once, under the first step that removes it:

1. ``missing_customer``   no customer id (guest checkouts cannot be segmented)
2. ``bad_debt``           invoice number starting "A" or description "Adjust bad debt"
3. ``non_product_code``   stock code in ``non_product_codes`` (postage, fees, manual lines...)
4. ``non_positive_price`` unit price <= 0 (free samples, stock write-offs)
5. ``wrong_quantity_sign`` quantity <= 0 on an ordinary invoice (stock adjustments), or
                          >= 0 on a cancellation, whose lines must be negative
6. ``duplicate``          exact repeat of an earlier kept line
7. ``quantity_outlier``   absolute quantity above ``max_quantity``
8. ``cancellation_kept_as_return`` or ``cancellation_dropped``: remaining "C" invoice lines

Only enabled steps appear in the ledger. Step 5 always runs; stock codes are upper-cased (when
asked) before any step, so ``85123a`` and ``85123A`` are one product everywhere downstream.
`TransactionCleaner.removed_customers` names the customers cleaning leaves without a purchase,
each with the step that took most of their lines, so that a prediction can account for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator

from segmentlab.schema import (
    CLEAN_COLUMNS,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    QUANTITY,
    RAW_COLUMNS,
    STOCK_CODE,
    UNIT_PRICE,
    CleaningLedger,
    DataError,
)

#: Stock codes in the Online Retail data that are charges, fees or accounting lines rather
#: than products (matched ignoring case). Row counts are from the full file.
NON_PRODUCT_CODES = (
    "POST",          # postage (1,256 lines)
    "DOT",           # dotcom postage (710)
    "C2",            # carriage (144)
    "M",             # manual price line, also "m" (572)
    "D",             # discount (77)
    "S",             # samples (63)
    "B",             # adjust bad debt (3)
    "BANK CHARGES",  # (37)
    "AMAZONFEE",     # (34)
    "CRUK",          # charity commission (16)
    "PADS",          # cushion pads sold at 0.001 as a filler line (4)
    # Gift vouchers are payment, not merchandise (34 lines in total).
    "GIFT_0001_10", "GIFT_0001_20", "GIFT_0001_30", "GIFT_0001_40", "GIFT_0001_50",
)
# "DCGS..." codes are kept: they are real products sold through the dotcom channel.

#: The description of the bad-debt accounting lines, compared after strip() and lower().
BAD_DEBT = "adjust bad debt"


class TransactionCleaner(BaseEstimator):
    """Configurable cleaning of raw invoice lines, every step a switch.

    Parameters
    ----------
    drop_missing_customer : bool
        Drop lines without a customer id. When False and some remain, ``customer_id`` is
        returned as nullable ``Int64`` instead of ``int64``.
    drop_bad_debt : bool
        Drop the "Adjust bad debt" accounting lines (invoice numbers starting with "A").
    non_product_codes : sequence of str
        Stock codes to drop, compared ignoring case; empty disables the step.
    drop_duplicates : bool
        Drop exact repeats of an earlier line (all raw columns equal).
    max_quantity : int or None
        Drop lines whose absolute quantity exceeds this. A cancelled order of that size goes
        with its cancellation, which has the same absolute quantity. The default removes the
        two known errors of the Online Retail data (80,995 and 74,215 units, each cancelled
        minutes later); the next largest order with a price is 4,800 units. None disables it.
    keep_returns : bool
        Keep cancellation lines ("C" invoices) as returns with ``is_return`` True;
        when False they are dropped.
    drop_non_positive_price : bool
        Drop lines whose unit price is zero or negative.
    uppercase_stock_codes : bool
        Upper-case stock codes first: the data writes some codes in two cases.
    """

    def __init__(self, drop_missing_customer: bool = True, drop_bad_debt: bool = True,
                 non_product_codes: Sequence[str] = NON_PRODUCT_CODES,
                 drop_duplicates: bool = True, max_quantity: int | None = 10_000,
                 keep_returns: bool = True, drop_non_positive_price: bool = True,
                 uppercase_stock_codes: bool = True):
        self.drop_missing_customer = drop_missing_customer
        self.drop_bad_debt = drop_bad_debt
        self.non_product_codes = non_product_codes
        self.drop_duplicates = drop_duplicates
        self.max_quantity = max_quantity
        self.keep_returns = keep_returns
        self.drop_non_positive_price = drop_non_positive_price
        self.uppercase_stock_codes = uppercase_stock_codes

    def clean(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, CleaningLedger]:
        """Drop unusable lines and set cancellations aside as returns.

        Parameters
        ----------
        raw : DataFrame
            ``RAW_COLUMNS``, as a source's ``read()`` returns them.

        Returns
        -------
        transactions : DataFrame
            ``CLEAN_COLUMNS``, ordered by ``invoice_date`` (stable), with a fresh index.
        ledger : CleaningLedger
            Rows in, purchases kept, and rows per step (returns included).
        """
        frame, keep, cancel, dropped, _ = self._decide(raw, steps=False)
        ledger = CleaningLedger(len(frame), int((keep & ~cancel).sum()), dropped)
        if not self.keep_returns:
            keep &= ~cancel
        return _finish(frame, keep, cancel), ledger

    def removed_customers(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The customers of ``raw`` left without a purchase by cleaning, and why.

        Parameters
        ----------
        raw : DataFrame
            ``RAW_COLUMNS``, as given to `clean`.

        Returns
        -------
        DataFrame
            ``customer_id``, ``reason`` and ``lines``, one row per customer none of whose lines
            cleaning kept as a purchase, ordered by ``customer_id``. ``reason`` is the ledger step
            that took most of the customer's lines (ties go to the earlier step);
            ``cancellation_kept_as_return`` when only returns were left. ``lines`` counts all of
            the customer's lines. Lines without a customer id belong to no one and are not here.
        """
        frame, _, _, dropped, step = self._decide(raw, steps=True)
        customers = frame[CUSTOMER_ID].to_numpy(dtype="float64", na_value=np.nan)
        known = ~np.isnan(customers)
        bought = np.unique(customers[known & (step == _KEPT)])
        rows = known & ~np.isin(customers, bought)
        lines = pd.DataFrame({CUSTOMER_ID: customers[rows].astype(np.int64), "step": step[rows]})
        per_step = lines.groupby([CUSTOMER_ID, "step"]).size().rename("n").reset_index()
        # The step with most lines, then the earlier step: sort so it comes first per customer.
        per_step = per_step.sort_values([CUSTOMER_ID, "n", "step"], ascending=[True, False, True])
        main = per_step.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)["step"]
        names = np.array(list(dropped), dtype=object)
        out = pd.DataFrame({CUSTOMER_ID: main.index.to_numpy(),
                            "reason": names[main.to_numpy()],
                            "lines": lines.groupby(CUSTOMER_ID).size().reindex(main.index).to_numpy()})
        return out.reset_index(drop=True)

    def _decide(self, raw: pd.DataFrame, steps: bool) -> tuple:
        """The frame, kept and cancellation masks, ledger counts, and (when ``steps``) per line
        the index in those counts of the step that took it (``_KEPT`` for a kept purchase)."""
        missing = [c for c in RAW_COLUMNS if c not in raw.columns]
        if missing:
            raise DataError(f"cannot clean: missing column(s) {', '.join(missing)}")
        frame = raw[RAW_COLUMNS]
        if self.uppercase_stock_codes:
            frame = frame.assign(**{STOCK_CODE: frame[STOCK_CODE].str.upper()})
        text = {column: _Encoded(frame[column]) for column in _TEXT_COLUMNS}
        cancel = text[INVOICE_NO].flag(lambda v: v.str.startswith("C"))
        keep = np.ones(len(frame), dtype=bool)
        step = np.full(len(frame) if steps else 0, _KEPT, dtype=np.int8)
        dropped: dict[str, int] = {}
        for name, rule in self._steps(frame, text, cancel):
            hit = keep & rule(keep)
            if steps:
                step[hit] = len(dropped)
            dropped[name] = int(hit.sum())
            keep &= ~hit
        returns = keep & cancel
        if steps:
            step[returns] = len(dropped)
        dropped["cancellation_kept_as_return" if self.keep_returns
                else "cancellation_dropped"] = int(returns.sum())
        return frame, keep, cancel, dropped, step

    def _steps(self, frame: pd.DataFrame, text: dict[str, _Encoded], cancel: np.ndarray) -> list:
        """(ledger name, rule) pairs in run order; a rule maps the kept mask to a drop mask."""
        quantity = frame[QUANTITY].to_numpy(dtype="float64", na_value=np.nan)
        price = frame[UNIT_PRICE].to_numpy(dtype="float64", na_value=np.nan)
        steps = []
        if self.drop_missing_customer:
            steps.append(("missing_customer", lambda _: _flag(frame[CUSTOMER_ID].isna())))
        if self.drop_bad_debt:
            steps.append(("bad_debt", lambda _: (
                text[INVOICE_NO].flag(lambda v: v.str.startswith("A"))
                | text[DESCRIPTION].flag(lambda v: v.str.strip().str.lower() == BAD_DEBT))))
        if len(self.non_product_codes) > 0:
            codes = {str(c).upper() for c in self.non_product_codes}
            steps.append(("non_product_code",
                          lambda _: text[STOCK_CODE].flag(lambda v: v.str.upper().isin(codes))))
        if self.drop_non_positive_price:
            # "not > 0" so that a missing price is dropped too.
            steps.append(("non_positive_price", lambda _: ~(price > 0)))
        steps.append(("wrong_quantity_sign",
                      lambda _: np.where(cancel, quantity >= 0, quantity <= 0)))
        if self.drop_duplicates:
            steps.append(("duplicate", lambda keep: _repeats(frame, text, keep)))
        if self.max_quantity is not None:
            steps.append(("quantity_outlier", lambda _: np.abs(quantity) > self.max_quantity))
        return steps


_TEXT_COLUMNS = (INVOICE_NO, STOCK_CODE, DESCRIPTION, COUNTRY)
_KEPT = -1  # step code of a line kept as a purchase


class _Encoded:
    """A text column as one integer code per line (-1 when missing) into its distinct values.

    Millions of lines hold a few thousand distinct codes and descriptions, so the string rules
    run on the distinct values only; the codes also feed the duplicate check.
    """

    def __init__(self, values: pd.Series):
        array = values.array
        if isinstance(array, pd.arrays.ArrowStringArray):
            # Arrow's hash encoding is about twice as fast as pd.factorize on Arrow strings.
            encoded = pa.chunked_array(pc.dictionary_encode(pa.array(array)))
            chunks = [c for c in encoded.chunks if len(c)]
            dictionary = chunks[-1].dictionary if chunks else pa.array([], pa.large_string())
            self.codes = np.concatenate([np.zeros(0, np.int64)] + [
                pc.fill_null(c.indices, -1).to_numpy().astype(np.int64) for c in chunks])
            self.values = pd.Series(dictionary, dtype=values.dtype)
        else:
            codes, uniques = pd.factorize(values)
            self.codes = codes.astype(np.int64)
            self.values = pd.Series(uniques, dtype=values.dtype)

    def flag(self, rule) -> np.ndarray:
        """``rule`` (a vectorised str test) per line, computed once per distinct value."""
        on_values = _flag(rule(self.values))
        return np.append(on_values, False)[self.codes]  # code -1 (missing) reads the False


def _flag(values: pd.Series) -> np.ndarray:
    """Boolean mask with missing values as False."""
    return values.to_numpy(dtype=bool, na_value=False)


_MIX = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: the usual multiplicative hash


def _repeats(frame: pd.DataFrame, text: dict[str, _Encoded], keep: np.ndarray) -> np.ndarray:
    """Lines that repeat an earlier kept line exactly.

    ``DataFrame.duplicated`` over all columns costs seconds per million lines. Equal lines have
    equal keys (`_line_keys`), so only kept lines whose key occurs twice can repeat; the exact
    check runs on those few percent, in their original order, so "earlier" is unchanged.
    """
    rows = np.flatnonzero(keep)
    keys = _line_keys(frame, text)[rows]
    order = np.argsort(keys, kind="stable")  # keys follow time, so this is nearly sorted
    ordered = keys[order]
    same = ordered[1:] == ordered[:-1]
    shared = np.zeros(len(rows), dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    candidates = rows[np.sort(order[shared])]
    repeats = np.zeros(len(frame), dtype=bool)
    repeats[candidates] = frame.take(candidates).duplicated(keep="first").to_numpy()
    return repeats


def _line_keys(frame: pd.DataFrame, text: dict[str, _Encoded]) -> np.ndarray:
    """uint64 per line, equal for equal lines: invoice second above a hash of the columns.

    Amount (quantity times price) and the date below the second add nothing, so are left out.
    Multiplying carries every input bit into the high half, which is the half kept.
    """
    parts = [text[c].codes for c in _TEXT_COLUMNS]
    parts += [_bits(frame[c]) for c in (QUANTITY, UNIT_PRICE, CUSTOMER_ID)]
    mixed = np.zeros(len(frame), dtype=np.uint64)
    for part in parts:
        np.bitwise_xor(mixed, part.view(np.uint64), out=mixed)
        np.multiply(mixed, _MIX, out=mixed)
    when = frame[INVOICE_DATE]
    seconds = np.zeros(len(frame), dtype=np.int64)
    if isinstance(when.dtype, np.dtype) and when.dtype.kind == "M":
        seconds = when.to_numpy().astype("datetime64[s]").view(np.int64)
    # Lines come roughly in time order, so the keys do too and sorting them is cheap.
    return (seconds.view(np.uint64) << np.uint64(32)) | (mixed >> np.uint64(32))


def _bits(values: pd.Series) -> np.ndarray:
    """int64 per line, equal for values ``duplicated`` takes as equal (NaN, -0.0, NA folded)."""
    kind = values.dtype.kind
    if kind == "f":
        floats = values.to_numpy(dtype="float64", na_value=np.nan) + 0.0  # -0.0 becomes 0.0
        floats[np.isnan(floats)] = np.nan  # one NaN bit pattern
        return floats.view(np.int64)
    if kind in "iub":
        return values.to_numpy(dtype="int64", na_value=-1)
    if isinstance(values.dtype, np.dtype) and kind == "M":
        return values.to_numpy().view(np.int64)
    return pd.factorize(values)[0].astype(np.int64)


def _finish(frame: pd.DataFrame, keep: np.ndarray, cancel: np.ndarray) -> pd.DataFrame:
    """Kept lines with ``is_return``, the id dtype fixed, ordered by date (stable).

    The date order is found on the kept dates alone, so the (string-heavy) frame is gathered
    once instead of filtered and then sorted.
    """
    rows = np.flatnonzero(keep)
    dates = frame[INVOICE_DATE].take(rows).reset_index(drop=True)
    if not dates.is_monotonic_increasing:  # files usually come in time order already
        rows = rows[dates.sort_values(kind="stable").index.to_numpy()]
    out = frame.take(rows).reset_index(drop=True)
    out[IS_RETURN] = cancel[rows]
    if not out[CUSTOMER_ID].hasnans:
        out[CUSTOMER_ID] = out[CUSTOMER_ID].astype("int64")
    return out[CLEAN_COLUMNS]
