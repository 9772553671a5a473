"""Engine prototype, DuckDB: ledger steps, exact duplicates and RFM over a Parquet file.

    python experiments/2026-11-29-outofcore-engine/duckdb_core.py /tmp/segmentlab-ooc/lines-10000000.parquet

The same work as ``polars_core.py``, written for measurement only (the real code is
``segmentlab.outofcore``). Prints stage seconds and the peak RSS of this process as JSON.
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
    import duckdb  # the engine's own import time is measured

    imported = time.perf_counter() - start
    NON_PRODUCT = ["POST", "D", "M", "C2", "DOT", "CRUK", "BANK CHARGES", "AMAZONFEE", "PADS", "S", "B"]
    codes = ", ".join(f"'{c}'" for c in NON_PRODUCT)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""
    CREATE VIEW raw AS SELECT "InvoiceNo" AS invoice_no, upper("StockCode") AS stock_code,
      "Description" AS description, "Quantity"::BIGINT AS quantity,
      "InvoiceDate"::TIMESTAMP AS invoice_date, "UnitPrice"::DOUBLE + 0.0 AS unit_price,
      "CustomerID"::BIGINT AS customer_id, "Country" AS country
    FROM read_parquet('{path}')""")
    con.execute(f"""
    CREATE VIEW flagged AS SELECT *, starts_with(invoice_no, 'C') AS cancel,
     CASE WHEN customer_id IS NULL THEN 1
          WHEN starts_with(invoice_no, 'A') OR lower(trim(description)) = 'adjust bad debt' THEN 2
          WHEN stock_code IN ({codes}) THEN 3
          WHEN NOT coalesce(unit_price > 0, false) THEN 4
          WHEN CASE WHEN starts_with(invoice_no, 'C') THEN quantity >= 0 ELSE quantity <= 0 END THEN 5
          ELSE 0 END AS step
    FROM raw""")
    seconds = {}
    t = time.perf_counter()
    steps = con.execute("SELECT step, count(*) FROM flagged GROUP BY step").fetchall()
    seconds["steps"] = time.perf_counter() - t
    t = time.perf_counter()
    con.execute("""CREATE TEMP TABLE lines AS
     SELECT customer_id, invoice_no, stock_code, quantity, invoice_date, unit_price, country, cancel,
            count(*) AS copies
     FROM flagged WHERE step = 0
     GROUP BY customer_id, invoice_no, stock_code, description, quantity, invoice_date, unit_price,
              country, cancel""")
    duplicates = con.execute("SELECT sum(copies - 1) FROM lines").fetchall()[0][0]
    seconds["dedup"] = time.perf_counter() - t
    t = time.perf_counter()
    rfm = con.sql("""WITH kept AS (SELECT * FROM lines WHERE abs(quantity) <= 10000)
     SELECT customer_id, max(invoice_date) AS last, count(DISTINCT invoice_no) AS frequency,
            sum(quantity * unit_price) AS spend
     FROM kept WHERE NOT cancel GROUP BY customer_id ORDER BY customer_id""").df()
    seconds["rfm"] = time.perf_counter() - t
    print(json.dumps({"import": imported, **seconds, "total": time.perf_counter() - start,
                      "cpu": time.process_time(), "customers": len(rfm), "duplicates": int(duplicates),
                      "step_counts": sorted(steps),
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
