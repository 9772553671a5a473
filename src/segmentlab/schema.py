"""Column names and the containers that travel between stages, defined once.

Every frame of invoice lines in segmentlab uses these snake_case names, whatever layout the
source file had (Online Retail, Online Retail II, the Kaggle CSV) or whether it was generated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

INVOICE_NO = "invoice_no"
STOCK_CODE = "stock_code"
DESCRIPTION = "description"
QUANTITY = "quantity"
INVOICE_DATE = "invoice_date"
UNIT_PRICE = "unit_price"
CUSTOMER_ID = "customer_id"
COUNTRY = "country"
AMOUNT = "amount"  # quantity * unit_price, in the data's currency (GBP for Online Retail)
IS_RETURN = "is_return"  # True for cancellation lines kept aside as returns

#: The eight source columns, in the order the Online Retail workbook has them.
SOURCE_COLUMNS = [
    INVOICE_NO, STOCK_CODE, DESCRIPTION, QUANTITY, INVOICE_DATE, UNIT_PRICE, CUSTOMER_ID, COUNTRY,
]
#: Columns of a normalised raw frame (what a loader returns).
RAW_COLUMNS = [*SOURCE_COLUMNS, AMOUNT]
#: Columns of a cleaned frame (what feature sets receive).
CLEAN_COLUMNS = [*RAW_COLUMNS, IS_RETURN]


class DataError(Exception):
    """Bad input: the message is one line naming the file, column, row and what was expected."""


@dataclass(frozen=True)
class CleaningLedger:
    """Where every input row went.

    ``rows_in == rows_kept + sum(dropped.values())`` always holds. ``dropped`` is ordered as the
    cleaning steps ran; each row is counted once, under the first step that removed it. Rows set
    aside as returns appear under ``"cancellation_kept_as_return"`` and remain available in the
    cleaned frame with ``is_return`` set.
    """

    rows_in: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        total = self.rows_kept + sum(self.dropped.values())
        if total != self.rows_in:
            raise ValueError(f"ledger does not add up: {self.rows_in} in, {total} accounted for")

    def to_dict(self) -> dict:
        return {"rows_in": self.rows_in, "rows_kept": self.rows_kept, "dropped": dict(self.dropped)}

    @classmethod
    def from_dict(cls, d: dict) -> CleaningLedger:
        return cls(int(d["rows_in"]), int(d["rows_kept"]), {k: int(v) for k, v in d["dropped"].items()})

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd  # schema stays importable without pandas (the command line's start-up)

        rows = [("rows_in", self.rows_in), *self.dropped.items(), ("rows_kept", self.rows_kept)]
        frame = pd.DataFrame(rows, columns=["step", "rows"])
        frame["share"] = frame["rows"] / max(self.rows_in, 1)
        return frame

    def format(self) -> str:
        width = max(len(k) for k in ["rows_in", "rows_kept", *self.dropped])
        lines = [f"  {'rows_in':<{width}}  {self.rows_in:>12,}"]
        lines += [f"  - {k:<{width - 2}}  {v:>12,}" for k, v in self.dropped.items()]
        lines.append(f"  {'rows_kept':<{width}}  {self.rows_kept:>12,}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Dataset:
    """Cleaned invoice lines with their provenance.

    Attributes
    ----------
    transactions : DataFrame or None
        ``CLEAN_COLUMNS``; purchases (``is_return`` False) and the cancellations kept aside as
        returns (``is_return`` True, negative quantity). ``customer_id`` is int64, never missing.
        None when the lines stayed out of core (``data.engine=duckdb``): the run then has
        customer-level frames only (`segmentlab.data.outofcore`).
    ledger : CleaningLedger
        Row accounting of the cleaning.
    data_hash : str
        Content hash of the input (file bytes, or the generator's parameters).
    source : str
        Human-readable origin (a path, or ``synthetic(...)``).
    truth : Series or None
        Planted segment per ``customer_id`` (synthetic data only).
    cache_hit : bool
        Whether the cleaned frame came from the cache instead of parsing the source.
    notes : tuple of str
        What reading the source said, one line each, for the console: the parts read with
        their lines and dates, then warnings (starting ``warning:``).
    """

    transactions: pd.DataFrame | None
    ledger: CleaningLedger
    data_hash: str
    source: str
    truth: pd.Series | None = None
    cache_hit: bool = False
    notes: tuple[str, ...] = ()

    @property
    def purchases(self) -> pd.DataFrame:
        return self.transactions[~self.transactions[IS_RETURN]]

    @property
    def returns(self) -> pd.DataFrame:
        return self.transactions[self.transactions[IS_RETURN]]
