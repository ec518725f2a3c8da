r"""The KV cache in serving: its size, PagedAttention's block table and block allocator, and fragmentation.

**Size.** Every generated token stores a key and a value per layer and key/value head:
$\text{bytes per token} = 2 \cdot L \cdot G \cdot d \cdot \text{bytes per element}$
(``manifold_course.nn.attention.kv_cache_bytes`` with ``seq_len = 1``).

**PagedAttention** (W. Kwon et al., "Efficient Memory Management for Large Language Model Serving with
PagedAttention", SOSP 2023, arXiv:2309.06180) borrows virtual memory from operating systems. The KV memory is a pool
of ``num_blocks`` physical *blocks* of ``block_size`` token slots. Each sequence owns a *block table*: logical block
$i$ (tokens $i b .. i b + b - 1$) lives in physical block ``table[i]``. Token $t$ is at
``(table[t // b], t % b)``. A sequence gets a new block only when its last one is full, so its waste is at most
$b - 1$ slots, against $T_{max} - T$ for a system that reserves the maximum length up front.
Sequences that share a prompt can share its blocks (reference counts); a write into a shared block first copies it
(*copy-on-write*).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course.nn.attention import kv_cache_bytes, scaled_dot_product_attention
from manifold_course.seeding import numpy_rng


def kv_bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_elem: int = 2) -> int:
    r"""$2 L G d \cdot$ bytes per element: the KV cache grows by this much per token."""
    return kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len=1, batch=1, bytes_per_elem=bytes_per_elem)


class BlockAllocator:
    """A pool of ``num_blocks`` blocks of ``block_size`` token slots, with per-sequence block tables.

    - ``allocate(seq, n_tokens)``: a new sequence holding n_tokens (its prompt); returns its block table.
    - ``append(seq)``: one more token; returns ``(physical_block, slot)`` where it goes.
    - ``free(seq)``: give its blocks back (a shared block returns only when no sequence uses it).
    - ``fork(parent, child)``: the child shares all the parent's blocks (copy-on-write on the next append).
    Raises ``MemoryError`` (and changes nothing) when the pool has too few free blocks.
    """

    def __init__(self, num_blocks: int, block_size: int):
        self.num_blocks, self.block_size = num_blocks, block_size
        self.free_blocks: list[int] = list(range(num_blocks))[::-1]   # a stack: pop() gives block 0 first
        self.ref = [0] * num_blocks
        self.tables: dict = {}
        self.lengths: dict = {}
        self.copies: list[tuple[int, int]] = []                         # (src, dst) block copies done by copy-on-write

    def num_free_blocks(self) -> int:
        return len(self.free_blocks)

    def _take(self) -> int:
        b = self.free_blocks.pop()
        self.ref[b] = 1
        return b

    def block_table(self, seq) -> list[int]:
        return list(self.tables[seq])

    def allocate(self, seq, n_tokens: int) -> list[int]:
        if seq in self.tables:
            raise KeyError(f"sequence {seq!r} already exists")
        need = math.ceil(n_tokens / self.block_size)
        if need > len(self.free_blocks):
            raise MemoryError(f"need {need} blocks, {len(self.free_blocks)} free")
        self.tables[seq] = [self._take() for _ in range(need)]
        self.lengths[seq] = n_tokens
        return list(self.tables[seq])

    def append(self, seq) -> tuple[int, int]:
        table, t = self.tables[seq], self.lengths[seq]
        slot = t % self.block_size
        if slot == 0:                                                   # last block full (or none yet): a new one
            if not self.free_blocks:
                raise MemoryError("no free block")
            table.append(self._take())
        elif self.ref[table[-1]] > 1:                                   # shared last block: copy it before writing
            if not self.free_blocks:
                raise MemoryError("no free block for copy-on-write")
            new = self._take()
            self.ref[table[-1]] -= 1
            self.copies.append((table[-1], new))
            table[-1] = new
        self.lengths[seq] = t + 1
        return table[-1], slot

    def fork(self, parent, child) -> list[int]:
        if child in self.tables:
            raise KeyError(f"sequence {child!r} already exists")
        self.tables[child] = list(self.tables[parent])
        self.lengths[child] = self.lengths[parent]
        for b in self.tables[child]:
            self.ref[b] += 1
        return list(self.tables[child])

    def free(self, seq) -> None:
        for b in self.tables.pop(seq):
            self.ref[b] -= 1
            if self.ref[b] == 0:
                self.free_blocks.append(b)
        del self.lengths[seq]

    def used_slots(self) -> int:
        """Token slots actually holding a token (shared tokens counted once per block)."""
        seen, total = set(), 0
        for seq, table in self.tables.items():
            for i, b in enumerate(table):
                if b not in seen:
                    seen.add(b)
                    total += min(self.block_size, self.lengths[seq] - i * self.block_size)
        return total

    def reserved_slots(self) -> int:
        return (self.num_blocks - len(self.free_blocks)) * self.block_size


def gather_kv(pool: torch.Tensor, block_table, seq_len: int) -> torch.Tensor:
    """pool (num_blocks, block_size, *feat), table of physical block ids -> the sequence's (seq_len, *feat) in order."""
    idx = torch.as_tensor(list(block_table), dtype=torch.long)
    return pool[idx].reshape(-1, *pool.shape[2:])[:seq_len]          # (n_blocks * block_size, *feat) -> trimmed


def paged_attention(q: torch.Tensor, k_pool: torch.Tensor, v_pool: torch.Tensor, block_table, seq_len: int) -> torch.Tensor:
    """Decode-step attention of q (H, d) over the sequence's keys / values stored in pools (num_blocks, b, H, d)."""
    k = gather_kv(k_pool, block_table, seq_len).transpose(0, 1)       # (H, T, d)
    v = gather_kv(v_pool, block_table, seq_len).transpose(0, 1)       # (H, T, d)
    return scaled_dot_product_attention(q[:, None, :], k, v)[:, 0]    # (H, d): the newest token sees all T keys


def fragmentation(lengths, max_len: int, block_size: int) -> dict:
    """Slots reserved and wasted for sequences of the given lengths: contiguous max-length vs paged allocation."""
    lengths = np.asarray(lengths)
    used = int(lengths.sum())
    contiguous = len(lengths) * max_len
    paged = int((np.ceil(lengths / block_size) * block_size).sum())
    return {"used": used, "contiguous_reserved": contiguous, "paged_reserved": paged,
            "contiguous_waste": (contiguous - used) / contiguous, "paged_waste": (paged - used) / paged,
            "paged_waste_per_seq": (paged - used) / len(lengths)}


def simulate_paged_workload(n_requests: int, max_len: int, block_size: int, num_blocks: int,
                            seed: int = 0) -> dict:
    """Drive a BlockAllocator with requests of random prompt and output lengths, one token per step for every running
    sequence; a request starts when its prompt fits. Returns the time-average memory utilisation and the waste seen."""
    rng = numpy_rng(seed)
    prompts = rng.integers(8, max_len // 2, n_requests)
    outputs = rng.integers(1, max_len // 2, n_requests)
    alloc = BlockAllocator(num_blocks, block_size)
    waiting, running, utils, max_waste = list(range(n_requests)), {}, [], 0
    while waiting or running:
        while waiting and math.ceil(prompts[waiting[0]] / block_size) < alloc.num_free_blocks():
            r = waiting.pop(0)
            alloc.allocate(r, int(prompts[r]))
            running[r] = int(outputs[r])
        progressed = False
        for r in list(running):
            try:
                alloc.append(r)
            except MemoryError:                                        # pool full: this sequence waits a step
                continue
            progressed = True
            running[r] -= 1
            if running[r] == 0:
                del running[r]
                alloc.free(r)
        if running and not progressed:                                 # deadlock: preempt the newest request (vLLM
            r = list(running)[-1]                                      # recomputes it later)
            alloc.free(r)
            del running[r]
            waiting.insert(0, r)                                       # it restarts its output from scratch
        if alloc.reserved_slots():
            utils.append(alloc.used_slots() / alloc.reserved_slots())
            max_waste = max(max_waste, max(len(t) * block_size - alloc.lengths[s] for s, t in alloc.tables.items())
                            if alloc.tables else 0)
    return {"mean_utilisation": float(np.mean(utils)), "max_waste_per_seq": int(max_waste), "steps": len(utils)}
