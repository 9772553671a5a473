"""Product recommendations per customer and per segment, judged out of time.

``history`` turns cleaned invoice lines into the customer x product matrix, popularity counts and
the ranking that every recommender shares (seen items excluded, unknown customers served from
their segment or the whole shop, one short reason per item). ``models`` holds the recommenders
(popularity, item co-purchase, word2vec neighbours) and ``factorisation`` the implicit-feedback
ALS; each is an estimator with ``fit(transactions, segments=None)`` and
``recommend(customers, k)``. ``evaluation`` fits them before a cutoff and scores the products
customers bought for the first time in the following horizon; ``segment_products`` says what to
push and stock per segment. This package may import ``schema`` and ``features``; it never imports
the study, tracking or report layers.
"""
