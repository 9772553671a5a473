"""Customers into segments: the clusterers we wrap (`clustering`), how a labelling is scored
(`evaluation`; DBCV in `dbcv`), one clustering run (`segmenting`) and what the segments mean:
profiles, names and recommended actions (`profiles`).

May import `schema`, `customers`, `data` and `features`; never `prediction`, `study` or `reports`.
"""
