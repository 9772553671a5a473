"""Getting invoice lines in: reading files (`loading`), cleaning them with a row ledger
(`cleaning`) and the seeded synthetic generator with planted segments (`synthetic`).

May import `segmentlab.schema`, `segmentlab.cache` and `segmentlab.customers`; nothing above.
"""
