"""Long-term memory for an agent: an exact vector store, Generative Agents' retrieval score, reflection,
recall against approximate indices, and context-aware decoding.

- Exact top-k retrieval by cosine similarity (:class:`VectorStore`): the reference that approximate indices
  (faiss's HNSW, Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using Hierarchical
  Navigable Small World graphs", 2016, arXiv:1603.09320; IVF, Jegou, Douze, Schmid, "Product quantization for
  nearest neighbor search", 2011; Johnson, Douze, Jegou, "Billion-scale similarity search with GPUs", 2017,
  arXiv:1702.08734) are measured against with :func:`recall_at_k`.
- Generative Agents (Park et al., "Generative Agents: Interactive Simulacra of Human Behavior", 2023,
  arXiv:2304.03442) score a memory by
  :math:`\\alpha_{rec}\\,\\hat r + \\alpha_{imp}\\,\\hat\\imath + \\alpha_{rel}\\,\\hat c`, each term min-max
  normalised over the memories (a constant term becomes 0.5, as in the authors' code), with recency
  :math:`r = \\gamma^{\\Delta t}` (hours since last access, :math:`\\gamma = 0.995`), importance 1-10 and
  relevance :math:`c = \\cos(q, m)`. :func:`reflect` stands in for their LLM-written reflections: k-means clusters
  of recent memories, each written back as one new memory (an extractive summary, stated as such).
- Context-aware decoding (Shi et al., "Trusting Your Evidence: Hallucinate Less with Context-aware Decoding",
  2023, arXiv:2305.14739): :math:`p \\propto \\mathrm{softmax}((1+\\alpha)\\ell(y\\mid c,x) - \\alpha\\,\\ell(y\\mid x))`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm; a zero row stays zero (its cosine with anything is defined as 0)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


class VectorStore:
    """Exact cosine top-k over every stored vector (brute force, O(N d) per query).

    ``add(vecs, meta)`` appends the rows of ``vecs`` (N, d) with one metadata item each; ``search(q, k)`` returns
    the ``min(k, N)`` best as ``[(id, cosine, meta), ...]``, best first, ids in insertion order from 0. Ties in the
    cosine go to the smaller id (a stable sort), so results are deterministic.
    """

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.vecs = np.zeros((0, self.dim))          # (N, d) unit rows
        self.meta: list[Any] = []

    def __len__(self) -> int:
        return len(self.meta)

    def add(self, vecs, meta: Sequence[Any]) -> None:
        v = np.asarray(vecs, dtype=np.float64).reshape(-1, self.dim)
        if len(meta) != len(v):
            raise ValueError(f"{len(v)} vectors but {len(meta)} metadata items")
        self.vecs = np.concatenate([self.vecs, _unit_rows(v)])
        self.meta.extend(meta)

    def search(self, q, k: int) -> list[tuple[int, float, Any]]:
        q = _unit_rows(np.asarray(q, dtype=np.float64).reshape(self.dim))
        scores = self.vecs @ q                                   # (N,) cosines
        order = np.argsort(-scores, kind="stable")[: max(0, int(k))]
        return [(int(i), float(scores[i]), self.meta[i]) for i in order]


def exact_top_k(X: np.ndarray, Q: np.ndarray, k: int) -> np.ndarray:
    """Ids (B, k) of the k largest inner products of each query row with the rows of X, best first, ties to the
    smaller id (a tie across the k-th place may go either way). ``argpartition`` first: O(N) per query, not a sort."""
    S = Q @ X.T                                                  # (B, N)
    k = min(k, S.shape[1])
    part = np.argpartition(-S, k - 1, axis=1)[:, :k]             # (B, k) the top k, unordered
    order = np.lexsort((part, -np.take_along_axis(S, part, 1)), axis=1)
    return np.take_along_axis(part, order, 1)


def recall_at_k(approx_ids, exact_ids) -> float:
    """Mean over queries of :math:`|A_q \\cap E_q| / |E_q|` (ids of ``-1``, faiss's "no result", never match)."""
    A, E = np.asarray(approx_ids), np.asarray(exact_ids)
    hits = [len(set(a[a >= 0].tolist()) & set(e.tolist())) / len(e) for a, e in zip(A, E)]
    return float(np.mean(hits))


# ---------------------------------------------------------------- Generative Agents


def min_max(x: np.ndarray) -> np.ndarray:
    """(x - min) / (max - min); a constant vector becomes 0.5 everywhere (as in Generative Agents' code)."""
    x = np.asarray(x, dtype=np.float64)
    span = x.max() - x.min()
    return np.full_like(x, 0.5) if span == 0 else (x - x.min()) / span


def memory_scores(memories: Sequence[dict], query_vec, now: float, weights: Sequence[float],
                  decay: float = 0.995) -> np.ndarray:
    """Retrieval scores (N,) of ``memories`` (dicts with ``"vec"``, ``"time"`` in hours, ``"importance"``) for
    a query: ``weights = (a_rec, a_imp, a_rel)`` times the min-max normalised recency ``decay ** (now - time)``,
    importance and cosine relevance."""
    a_rec, a_imp, a_rel = (float(w) for w in weights)
    V = _unit_rows(np.array([np.asarray(m["vec"], dtype=np.float64) for m in memories]))
    q = _unit_rows(np.asarray(query_vec, dtype=np.float64))
    recency = float(decay) ** (float(now) - np.array([float(m["time"]) for m in memories]))
    importance = np.array([float(m["importance"]) for m in memories])
    return a_rec * min_max(recency) + a_imp * min_max(importance) + a_rel * min_max(V @ q)


def reflect(vecs: np.ndarray, n_clusters: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster memory embeddings (k-means, scikit-learn) and return (labels (N,), unit centroids (K, d)): each
    centroid is the embedding of one reflection, the members its evidence."""
    from sklearn.cluster import KMeans

    from manifold_course.seeding import course_seed

    km = KMeans(n_clusters=n_clusters, n_init=4, random_state=course_seed(seed)).fit(_unit_rows(np.asarray(vecs)))
    return km.labels_, _unit_rows(km.cluster_centers_)


# ---------------------------------------------------------------- context-aware decoding


def context_aware_decoding(logits_ctx: torch.Tensor, logits_noctx: torch.Tensor, alpha: float) -> torch.Tensor:
    """Probabilities :math:`\\mathrm{softmax}((1+\\alpha)\\,\\ell_{ctx} - \\alpha\\,\\ell_{no\\,ctx})` over the last
    axis; :math:`\\alpha = 0` gives the ordinary distribution with the context."""
    return torch.softmax((1 + alpha) * logits_ctx - alpha * logits_noctx, dim=-1)


# ---------------------------------------------------------------- Good-Turing (F6)


def singleton_rate(counts) -> float:
    """Good-Turing estimate of the missing mass: the fraction of observations whose item was seen exactly once."""
    c = np.asarray(counts)
    return float((c == 1).sum() / c.sum())
