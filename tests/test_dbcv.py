"""DBCV computed by segmentlab equals hdbscan's ``validity_index`` exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hdbscan.validity import validity_index as library_index

from segmentlab.segmentation.dbcv import internal_minimum_spanning_tree, validity_index


def _both(X, labels):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return library_index(X, labels), validity_index(X, labels)


@pytest.mark.parametrize("seed", range(12))
def test_equals_library_value_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(30, 300)), int(rng.integers(1, 5)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, d)) + np.repeat(rng.normal(scale=3, size=(k, d)), -(-n // k), axis=0)[:n]
    if seed % 3 == 0:
        X = np.round(X, 1)  # many equal distances: ties decide which tree vertex an edge keeps
    if seed % 4 == 0:
        X[: n // 5] = X[0]  # duplicated customers: zero distances
    labels = np.repeat(np.arange(k), -(-n // k))[:n]
    labels[rng.random(n) < 0.1] = -1  # noise counts in the denominator only
    expected, got = _both(X, labels)
    assert got == expected


def test_empty_cluster_ids_are_skipped_like_the_library():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(size=(40, 2)), rng.normal(5, size=(40, 2))])
    labels = np.repeat([0, 2], 40)  # no cluster 1
    expected, got = _both(X, labels)
    assert got == expected


def test_spanning_tree_edges_attach_to_lowest_tree_vertex_at_equal_distance():
    # Four points on a line, spaced 1: every MST edge weighs 1, and the library re-attaches each
    # edge to the lowest-numbered tree vertex at that distance.
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    reach = np.abs(x - x.T)
    vertices, edges = internal_minimum_spanning_tree(reach)
    assert list(vertices) == [1, 2]
    assert edges.tolist() == [[1.0, 2.0, 1.0]]


def test_faster_than_library_on_a_study_sized_sample():
    from time import process_time

    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(1200, 3)), 2)
    labels = (rng.random(1200) * 3).astype(np.intp)
    start = process_time()
    expected = library_index(X, labels)
    library = process_time() - start
    start = process_time()
    got = validity_index(X, labels)
    ours = process_time() - start
    assert got == expected
    assert ours < library / 2, f"{ours:.2f} s against the library's {library:.2f} s (CPU)"
