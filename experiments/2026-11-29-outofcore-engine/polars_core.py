"""Engine prototype, polars (streaming engine): the work of ``duckdb_core.py``.

    python experiments/2026-11-29-outofcore-engine/polars_core.py /tmp/segmentlab-ooc/lines-10000000.parquet
"""

import argparse
import json
import resource
import time


def main() -> None:
    """Run the prototype on the file named on the command line; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parquet", help="lines file written by benchmarks/make_lines.py")
    path = parser.parse_args().parquet
    start = time.perf_counter()
    import polars as pl  # the engine's own import time is measured

    imported = time.perf_counter() - start
    NON_PRODUCT = ["POST", "D", "M", "C2", "DOT", "CRUK", "BANK CHARGES", "AMAZONFEE", "PADS", "S", "B"]
    col = pl.col
    raw = pl.scan_parquet(path).select(
        col("InvoiceNo").alias("invoice_no"), col("StockCode").str.to_uppercase().alias("stock_code"),
        col("Description").alias("description"), col("Quantity").cast(pl.Int64).alias("quantity"),
        col("InvoiceDate").cast(pl.Datetime("us")).alias("invoice_date"),
        (col("UnitPrice").cast(pl.Float64) + 0.0).alias("unit_price"),
        col("CustomerID").cast(pl.Int64).alias("customer_id"), col("Country").alias("country"))
    cancel = col("invoice_no").str.starts_with("C")
    bad_debt = (col("invoice_no").str.starts_with("A")
                | (col("description").str.strip_chars().str.to_lowercase() == "adjust bad debt"))
    wrong_sign = pl.when(cancel).then(col("quantity") >= 0).otherwise(col("quantity") <= 0)
    step = (pl.when(col("customer_id").is_null()).then(1).when(bad_debt).then(2)
            .when(col("stock_code").is_in(NON_PRODUCT)).then(3)
            .when(~(col("unit_price") > 0).fill_null(False)).then(4)
            .when(wrong_sign).then(5).otherwise(0))
    flagged = raw.with_columns(step=step, cancel=cancel)
    seconds = {}
    t = time.perf_counter()
    steps = flagged.group_by("step").len().collect(engine="streaming")
    seconds["steps"] = time.perf_counter() - t
    t = time.perf_counter()
    lines = (flagged.filter(col("step") == 0)
             .group_by(["customer_id", "invoice_no", "stock_code", "description", "quantity",
                        "invoice_date", "unit_price", "country", "cancel"])
             .agg(copies=pl.len()).collect(engine="streaming"))
    duplicates = int(lines["copies"].sum() - len(lines))
    seconds["dedup"] = time.perf_counter() - t
    t = time.perf_counter()
    rfm = (lines.lazy().filter((col("quantity").abs() <= 10000) & ~col("cancel"))
           .group_by("customer_id").agg(last=col("invoice_date").max(),
                                        frequency=col("invoice_no").n_unique(),
                                        spend=(col("quantity") * col("unit_price")).sum())
           .sort("customer_id").collect(engine="streaming").to_pandas())
    seconds["rfm"] = time.perf_counter() - t
    print(json.dumps({"import": imported, **seconds, "total": time.perf_counter() - start,
                      "cpu": time.process_time(), "customers": len(rfm), "duplicates": duplicates,
                      "step_counts": sorted(steps.rows()),
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
