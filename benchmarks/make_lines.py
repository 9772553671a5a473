"""Write many synthetic invoice lines to one file, chunk by chunk, without holding them all.

    python benchmarks/make_lines.py N_LINES PATH.parquet|PATH.csv.gz [--chunk-lines 1e6]
                                                              [--seed 42]

Each chunk is its own ``SyntheticTransactions`` (one customer per 75 lines, seed ``seed + i``),
so a 100 M-line file is a hundred independent shops over the same calendar year, written one
after the other in the Online Retail layout (original column names). Customers are **kept
distinct** between chunks: chunk ``i`` adds ``i * 10**7`` to its customer ids and to its invoice
numbers (``C`` kept in front), so no customer, invoice or exact duplicate line spans two chunks
and the number of customers grows linearly with the lines, as it would for a bigger shop. Within
a chunk the lines keep the generator's noise (guests, cancellations, duplicates, zero prices).

Parquet gets one row group per chunk; ``csv.gz`` is written as the real file is (ISO dates,
ids without ``.0``, empty for missing). Peak memory is that of one chunk (about 1 GiB per
million lines). The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from segmentlab.data.loading import LAYOUTS
from segmentlab.data.synthetic import SyntheticTransactions
from segmentlab.schema import CUSTOMER_ID, INVOICE_NO, SOURCE_COLUMNS

LINES_PER_CUSTOMER = 75
#: Id and invoice-number offset between chunks; a chunk's own ids stay far below it.
STRIDE = 10_000_000
HEADER = LAYOUTS["Online Retail"]


def chunk_table(index: int, n_lines: int, seed: int) -> pa.Table:
    """Chunk ``index`` as an Arrow table in the Online Retail layout, ids moved to its range."""
    source = SyntheticTransactions(n_customers=max(n_lines // LINES_PER_CUSTOMER, 1),
                                   n_lines=n_lines, seed=seed + index)
    frame = source.read()[SOURCE_COLUMNS]
    offset = index * STRIDE
    if frame[CUSTOMER_ID].max() >= STRIDE:
        raise SystemExit(f"chunk of {n_lines:,} lines has ids beyond {STRIDE:,}: use smaller chunks")
    frame[CUSTOMER_ID] = frame[CUSTOMER_ID] + offset
    number = frame[INVOICE_NO].str.removeprefix("C").astype("int64") + offset
    prefix = frame[INVOICE_NO].str.startswith("C").map({True: "C", False: ""})
    frame[INVOICE_NO] = (prefix + number.astype(str)).astype("str")
    frame.columns = HEADER
    return pa.Table.from_pandas(frame, preserve_index=False)


def as_csv_text(table: pa.Table) -> pa.Table:
    """The real file's text: "2010-12-01 08:26:00", no sub-second digits."""
    seconds = pc.cast(table.column("InvoiceDate"), pa.timestamp("s"))
    date = pc.strftime(seconds, "%Y-%m-%d %H:%M:%S")
    return table.set_column(HEADER.index("InvoiceDate"), "InvoiceDate", date)


def write(n_lines: int, path: Path, fmt: str, chunk_lines: int, seed: int,
          progress: bool = False) -> dict:
    """Write about ``n_lines`` lines to ``path``; return lines, customers, chunks and seconds."""
    start = time.perf_counter()
    sizes = [chunk_lines] * (n_lines // chunk_lines)
    if n_lines % chunk_lines or not sizes:
        sizes.append(max(n_lines % chunk_lines, 1))
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = customers = 0
    writer = None
    try:
        for i, size in enumerate(sizes):
            table = chunk_table(i, size, seed)
            rows += table.num_rows
            customers += pc.count_distinct(table.column("CustomerID")).as_py()
            if fmt == "parquet":
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table, row_group_size=table.num_rows)
            else:
                writer = writer or pa.CompressedOutputStream(str(tmp), "gzip")
                pv.write_csv(as_csv_text(table), writer,
                             pv.WriteOptions(include_header=i == 0))
            if progress:
                print(f"chunk {i + 1}/{len(sizes)}: {rows:,} lines", file=sys.stderr, flush=True)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    return {"lines": rows, "customers": customers, "chunks": len(sizes),
            "seconds": time.perf_counter() - start, "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n_lines", type=float, help="about this many lines, e.g. 1e8")
    parser.add_argument("path", type=Path)
    parser.add_argument("--chunk-lines", type=float, default=1e6)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    fmt = next((f for f in ("parquet", "csv.gz") if args.path.name.endswith("." + f)), None)
    if fmt is None:
        parser.error(f"{args.path}: name the file .parquet or .csv.gz")
    done = write(int(args.n_lines), args.path, fmt, int(args.chunk_lines), args.seed,
                 progress=True)
    print(f"{args.path}: {done['lines']:,} lines, {done['customers']:,} customers with an id, "
          f"{done['chunks']} chunks, {done['bytes'] / 2**20:,.0f} MiB, {done['seconds']:.0f} s")


if __name__ == "__main__":
    main()
