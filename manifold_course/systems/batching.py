r"""Serving schedulers: static vs continuous batching, and the speed-up model of speculative decoding.

**Batching.** A decode step of a batch of $B$ sequences reads all the weights once, so on a GPU its time is nearly
independent of $B$ while $B$ is small (memory-bound): we model $t_{step}(B) = t_0 + t_1 B$ with $t_1 \ll t_0$.
*Static* batching takes up to $B_{max}$ waiting requests and runs them until the **longest** one finishes; slots whose
request is done sit idle and new requests wait. *Continuous* (iteration-level) batching (G.-I. Yu et al., "Orca: A
Distributed Serving System for Transformer-Based Generative Models", OSDI 2022) refills a slot at the very next step.

**Speculative decoding** (Y. Leviathan, M. Kalman, Y. Matias, "Fast Inference from Transformers via Speculative
Decoding", ICML 2023, arXiv:2211.17192; C. Chen et al., arXiv:2302.01318). A draft model proposes $k$ tokens, the
target checks them in one call. If each draft token is accepted independently with probability $a$, the number of
tokens produced per target call is $1 + (\text{accepted prefix length})$, with mean
$$E[\text{tokens per target call}] = \sum_{i=0}^{k} a^i = \frac{1 - a^{k+1}}{1 - a}\quad(k + 1 \text{ at } a = 1),$$
and, when one draft call costs $c$ target calls, the wall-clock speed-up is $\frac{1 - a^{k+1}}{(1 - a)(k c + 1)}$
(``manifold_course.nn.decoding.expected_speedup``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manifold_course.nn.decoding import expected_speedup, expected_tokens_per_round
from manifold_course.seeding import numpy_rng


@dataclass(frozen=True)
class Workload:
    arrival: np.ndarray          # (N,) arrival times (s), sorted
    output_len: np.ndarray       # (N,) tokens to generate per request


def make_workload(n: int = 400, rate: float = 50.0, mean_len: float = 60.0, seed: int = 0) -> Workload:
    """Poisson arrivals at ``rate`` requests / s; geometric output lengths of mean ``mean_len`` (heavy spread)."""
    rng = numpy_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    return Workload(arrival, rng.geometric(1 / mean_len, n))


def step_time(batch: int, t0: float = 0.02, t1: float = 0.0005) -> float:
    """Seconds for one decode step of ``batch`` sequences (memory-bound: mostly the fixed weight read t0)."""
    return t0 + t1 * batch


def simulate(work: Workload, max_batch: int = 16, policy: str = "continuous") -> dict:
    """Run the workload through one engine with ``policy`` "static" or "continuous".

    Returns throughput (tokens / s), mean and 95th-percentile latency (finish - arrival, s), mean batch occupancy.
    """
    n = len(work.arrival)
    finish = np.zeros(n)
    left = work.output_len.astype(int).copy()
    t, nxt, active, occupancy = 0.0, 0, [], []
    while nxt < n or active:
        if not active and nxt < n and work.arrival[nxt] > t:
            t = float(work.arrival[nxt])                               # idle: jump to the next arrival
        if policy == "continuous" or not active:                      # static: admit only into an empty engine
            while nxt < n and work.arrival[nxt] <= t and len(active) < max_batch:
                active.append(nxt)
                nxt += 1
        if policy == "static":                                         # the batch runs until its longest request ends
            steps = int(left[active].max())
            dt = step_time(len(active))
            finish[active] = t + left[active] * dt                     # each request's own last token
            t += steps * dt
            occupancy += [float(np.mean(left[active] > s)) * len(active) / max_batch for s in range(steps)]
            left[active] = 0
            active = []
            continue
        t += step_time(len(active))
        occupancy.append(len(active) / max_batch)
        left[active] -= 1
        for r in [r for r in active if left[r] == 0]:
            finish[r] = t
            active.remove(r)
    latency = finish - work.arrival
    return {"throughput": float(work.output_len.sum() / (t - work.arrival[0])), "mean_latency": float(latency.mean()),
            "p95_latency": float(np.percentile(latency, 95)), "occupancy": float(np.mean(occupancy))}


def speculative_speedup(a: float, k: int, c: float) -> float:
    r"""Wall-clock speed-up $\frac{1 - a^{k+1}}{(1 - a)(k c + 1)}$ (reuses ``nn.decoding.expected_speedup``)."""
    return expected_speedup(a, k, c)


def tokens_per_target_call(a: float, k: int) -> float:
    r"""$\frac{1 - a^{k+1}}{1 - a}$ (reuses ``nn.decoding.expected_tokens_per_round``)."""
    return expected_tokens_per_round(a, k)


def simulate_tokens_per_call(a: float, k: int, rounds: int = 20000, seed: int = 0) -> float:
    """Monte Carlo: each of k drafts accepted with probability a until the first rejection; +1 target token."""
    rng = numpy_rng(seed)
    accept = rng.random((rounds, k)) < a                               # (rounds, k)
    prefix = np.cumprod(accept, axis=1).sum(axis=1)                    # accepted prefix length
    return float((prefix + 1).mean())


def best_k(a: float, c: float, k_max: int = 16) -> int:
    """The draft length k in 1..k_max with the largest modelled speed-up."""
    return int(np.argmax([speculative_speedup(a, k, c) for k in range(1, k_max + 1)]) + 1)
