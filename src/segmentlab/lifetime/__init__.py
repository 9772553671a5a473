"""Customer-base models fitted by maximum likelihood: who is still a customer, how often they
will buy and how much, and what that is worth.

``summary`` turns cleaned transactions into the per-customer frequency / recency / T /
monetary value at a cutoff; ``bgnbd`` (BG/NBD: purchases and dropout) and ``gamma_gamma``
(spend per purchase) fit on that summary with ``likelihood``; ``value.CustomerValue`` fits both
at a cutoff and returns ``p_alive``, expected purchases and spend in a horizon and a discounted
CLV per customer; ``simulation`` draws customers from the models for tests. Modules here import
only NumPy, SciPy, pandas, scikit-learn's base classes and ``segmentlab.schema``: never
``prediction``, ``study``, MLflow or PyMC-Marketing (the optional ``clv`` extra is used only by a
test that compares its estimates with ours).
"""
