"""Segments through time: the run's fitted feature sets and segmenter applied at a series of
snapshot dates (never refitted, so a segment means the same thing at every date), explicit "not
yet a customer" and "churned" states, migration matrices with the revenue each flow carries,
stay/upgrade/downgrade/churn rates, and early warnings for customers who just moved down, with
an honest check of whether moving down foretells a lapse. ``snapshots`` labels, ``migration``
counts flows, ``early_warning`` ranks and checks warnings, ``tracker`` ties them together for a
run or new data, ``figures`` draws them (the only module importing plotly and ``reporting``).
May import ``schema`` and the scikit-learn objects a run fitted; never ``tracking`` or mlflow.
"""
