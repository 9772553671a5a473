"""DBCV, the density-based clustering validation index, computed as ``hdbscan`` does but faster.

`validity_index` returns what ``hdbscan.validity.validity_index(X, labels)`` returns (euclidean
metric, Moulavi et al. 2014), step for step, with the same library calls for every number, so
the value is identical (tested). Two steps are vectorised:

- the library's ``internal_minimum_spanning_tree`` re-attaches each edge of the minimum spanning
  tree to the lowest-numbered tree vertex at the same (``isclose``) distance, one ``isclose`` and
  one ``intersect1d`` per edge: O(m^2 log m) in Python calls, about 90 % of the index on a
  3,000-customer sample (~1 s a trial, ~3 s under load). Here it is one ``isclose`` over the
  matrix rows of the new vertices and a first-true per row;
- mutual reachability distances are one ``np.maximum`` instead of a stacked (m, m, 3) array, and
  core distances invert the nonzero distances in place of two boolean-mask copies.
"""

from __future__ import annotations

import numpy as np
from hdbscan.validity import density_separation, mst_linkage_core
from sklearn.metrics import pairwise_distances


def validity_index(X: np.ndarray, labels: np.ndarray) -> float:
    """DBCV of a labelling, in [-1, 1] (higher is better); equal to hdbscan's ``validity_index``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
        The points, compared with euclidean distances.
    labels : ndarray of shape (n_samples,), int
        Clusters ``0..k-1`` (the library loops up to the largest label), ``-1`` for noise, which
        counts in the denominator only.

    Returns
    -------
    float

    Raises
    ------
    AssertionError
        Where the library's own assertion fails (an edge of the spanning tree with no tree vertex
        at its distance), so callers handle both the same way.
    """
    n_clusters = int(labels.max()) + 1
    core, sparseness, internal = {}, {}, {}
    for cluster in range(n_clusters):
        members = labels == cluster
        if not members.any():
            continue
        distances = pairwise_distances(X[members], metric="euclidean")
        core[cluster] = all_points_core_distance(distances, d=X.shape[1])
        reach = np.maximum(np.maximum(distances, core[cluster][np.newaxis, :]), core[cluster][:, np.newaxis])
        internal[cluster], edges = internal_minimum_spanning_tree(reach)
        sparseness[cluster] = edges.T[2].max()
    separation = np.full((n_clusters, n_clusters), np.inf)
    for i in internal:
        for j in (j for j in internal if j > i):
            separation[i, j] = separation[j, i] = density_separation(
                X, labels, i, j, internal[i], internal[j], core[i], core[j], metric="euclidean")
    result = 0.0
    for i in internal:
        nearest = separation[i].min()
        score = (nearest - sparseness[i]) / max(nearest, sparseness[i])
        result += (np.sum(labels == i) / float(X.shape[0])) * score
    return result


def all_points_core_distance(distances: np.ndarray, d: int) -> np.ndarray:
    """All-points core distance of each point of a cluster (``hdbscan.validity``'s, same operations).

    Parameters
    ----------
    distances : ndarray of shape (m, m)
        Pairwise distances within the cluster (not modified).
    d : int
        Dimension of the space.

    Returns
    -------
    ndarray of shape (m,)
    """
    inverse = np.zeros_like(distances)
    np.divide(1.0, distances, out=inverse, where=distances != 0)
    inverse **= d  # the library's (1 / distance) ** d, zeros (self, duplicates) left at zero
    result = inverse.sum(axis=1)
    result /= distances.shape[0] - 1
    if result.sum() == 0:
        return np.zeros(len(distances))
    result **= -1.0 / d
    return result


def internal_minimum_spanning_tree(reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Internal vertices and edges of the spanning tree, as ``hdbscan.validity`` defines them.

    Parameters
    ----------
    reach : ndarray of shape (m, m)
        Mutual reachability distances within one cluster.

    Returns
    -------
    vertices : ndarray
        Vertices of degree above one (``[0]`` when there are none).
    edges : ndarray of shape (e, 3)
        ``(from, to, weight)`` of the edges between internal vertices; all edges when none are.
    """
    linkage = mst_linkage_core(reach)
    tree = linkage.copy()
    if len(tree) > 1:
        tree[1:, 0] = _lowest_tree_vertex_at_distance(reach, linkage)
    degree = np.bincount(tree.T[:2].flatten().astype(np.intp))
    vertices = np.arange(reach.shape[0])[degree > 1]
    if not len(vertices):
        vertices = [0]
    inside = np.prod(np.isin(tree.T[:2], vertices), axis=0).astype(bool)
    return vertices, (tree[inside] if np.any(inside) else tree.copy())


def _lowest_tree_vertex_at_distance(reach: np.ndarray, linkage: np.ndarray) -> np.ndarray:
    """For edges 1.. of Prim's order: the lowest vertex already in the tree at ``isclose`` distance.

    Vertex 0 starts the tree and edge k adds vertex ``linkage[k, 1]``, so before edge i the tree
    holds the vertices added at steps ``<= i`` (vertex 0 at step 0, edge k's at step k + 1); the
    edge's own new vertex (step i + 1) is not among them.
    """
    added = linkage[:, 1].astype(np.intp)
    step = np.empty(reach.shape[0], dtype=np.intp)
    step[0], step[added] = 0, np.arange(1, len(added) + 1)
    rows = np.arange(1, len(added))
    close = np.isclose(reach[added[1:]], linkage[1:, 2][:, np.newaxis])
    close &= step[np.newaxis, :] <= rows[:, np.newaxis]
    if not close.any(axis=1).all():
        raise AssertionError("a spanning-tree edge has no tree vertex at its distance")
    return close.argmax(axis=1).astype(np.float64)
