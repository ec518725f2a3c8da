r"""Distributed training on a CPU: data, tensor and pipeline parallelism, ring all-reduce and ZeRO (sections 6.6-6.7).

Two halves.

*Simulated in one process* (what the exercises grade): "ranks" are Python lists of tensors.

- Ring all-reduce (Patarasuk & Yuan 2009; Baidu 2017): a reduce-scatter then an all-gather, each of $N-1$ steps in
  which every rank sends one chunk to its right neighbour. Each rank sends $2\frac{N-1}{N}S$ elements for a tensor of
  $S$ elements, independent of $N$ for large $N$.
- Tensor parallelism (Megatron-LM, Shoeybi et al. 2019, arXiv:1909.08053): column split
  $Y = X[A_1, \dots, A_N] = [XA_1, \dots, XA_N]$ (no communication), then row split
  $Z = \sum_i \phi(XA_i) B_i$ (one all-reduce per MLP forward).
- Pipeline parallelism (GPipe, Huang et al. 2019, arXiv:1811.06965): $p$ stages, $m$ micro-batches, bubble fraction
  $(p-1)/(m+p-1)$.
- ZeRO (Rajbhandari et al. 2020, arXiv:1910.02054): mixed-precision Adam holds $2 + 2 + 12 = 16$ bytes per parameter
  (fp16 weights, fp16 gradients, fp32 master weights + momentum + variance). Per rank: ZeRO-1 $4\Psi + 12\Psi/N$,
  ZeRO-2 $2\Psi + 14\Psi/N$, ZeRO-3 $16\Psi/N$.

*Real processes* (torch.distributed, gloo backend, on 127.0.0.1): :func:`launch` runs a worker function of this module
on ``world_size`` spawned processes; :func:`demo_worker` measures data parallelism from scratch against
DistributedDataParallel, a send/recv ring all-reduce against ``dist.all_reduce``, a tensor-parallel MLP, and the
optimizer-state bytes of ZeroRedundancyOptimizer and FSDP2 ``fully_shard``. Workers must live in a module (spawn
pickles them by qualified name).
"""

from __future__ import annotations

import os
import pickle
import socket
import traceback
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from manifold_course.seeding import manual_seed, torch_generator

Tensor = torch.Tensor

# ---------------------------------------------------------------- in-process simulation


def allreduce_bytes(size: float, n: int) -> float:
    r"""Amount each rank sends in a ring all-reduce of a tensor of ``size`` (bytes or elements): $2(n-1)/n \cdot S$."""
    return 2.0 * (n - 1) / n * float(size)


def _chunks(x: Tensor, n: int) -> list[Tensor]:
    return [c.clone() for c in torch.tensor_split(x, n)]              # sizes differ by at most one


def reduce_scatter_sim(tensors: Sequence[Tensor]) -> list[Tensor]:
    """Ring reduce-scatter: rank r ends with chunk r of the sum (chunks from ``torch.tensor_split(x, N)``).

    Step s = 0..N-2: rank r sends its chunk (r - s - 1) mod N to rank r + 1, which adds it to its own copy.
    """
    n = len(tensors)
    bufs = [_chunks(t, n) for t in tensors]                           # bufs[rank][chunk]
    for s in range(n - 1):
        sent = [bufs[r][(r - s - 1) % n].clone() for r in range(n)]   # all sends happen "at once"
        for r in range(n):
            src = (r - 1) % n
            bufs[r][(src - s - 1) % n] += sent[src]
    return [bufs[r][r] for r in range(n)]


def ring_allreduce_sim(tensors: Sequence[Tensor]) -> list[Tensor]:
    """Ring all-reduce of N equal-shape 1-D tensors: returns N new tensors, each the elementwise sum."""
    n = len(tensors)
    bufs = [_chunks(t, n) for t in tensors]
    for s in range(n - 1):                                            # reduce-scatter
        sent = [bufs[r][(r - s - 1) % n].clone() for r in range(n)]
        for r in range(n):
            src = (r - 1) % n
            bufs[r][(src - s - 1) % n] += sent[src]
    for s in range(n - 1):                                            # all-gather: rank r owns chunk r
        sent = [bufs[r][(r - s) % n].clone() for r in range(n)]
        for r in range(n):
            src = (r - 1) % n
            bufs[r][(src - s) % n] = sent[src]
    return [torch.cat(b) for b in bufs]


def column_parallel_forward(x: Tensor, a_shards: Sequence[Tensor]) -> list[Tensor]:
    """Column-parallel linear: rank i computes $X A_i$ with $A_i$ of shape (d_in, h_i). No communication."""
    return [x @ a for a in a_shards]                                  # each (B, h_i)


def row_parallel_forward(x_shards: Sequence[Tensor], b_shards: Sequence[Tensor], bias: Tensor | None = None) -> Tensor:
    r"""Row-parallel linear: $Z = \sum_i X_i B_i$ (the all-reduce) + bias, the bias added once, after the sum."""
    z = sum(xi @ bi for xi, bi in zip(x_shards, b_shards))            # (B, d_out)
    return z if bias is None else z + bias


def tensor_parallel_mlp(x: Tensor, a_shards: Sequence[Tensor], b_shards: Sequence[Tensor]) -> Tensor:
    r"""Megatron MLP $\mathrm{GELU}(XA)B$ with A split by columns and B by rows: one reduction in the forward."""
    return row_parallel_forward([F.gelu(h) for h in column_parallel_forward(x, a_shards)], b_shards)


def pipeline_bubble(p: int, m: int) -> float:
    """GPipe bubble fraction $(p-1)/(m+p-1)$: idle share of the stage-time slots."""
    return (p - 1) / (m + p - 1)


def gpipe_schedule(p: int, m: int) -> np.ndarray:
    """GPipe timetable, int64 array (p, 2(m+p-1)): +(j+1) forward of micro-batch j, -(j+1) its backward, 0 idle.

    Forward of j on stage s at time s + j; backward (in order j = 0..m-1) on stage s at
    time (m + p - 1) + (p - 1 - s) + j, after the last forward has flushed through the pipe.
    """
    t_f = m + p - 1
    table = np.zeros((p, 2 * t_f), dtype=np.int64)
    for s in range(p):
        for j in range(m):
            table[s, s + j] = j + 1
            table[s, t_f + (p - 1 - s) + j] = -(j + 1)
    return table


def schedule_bubble(table: np.ndarray) -> float:
    """Measured idle fraction of a timetable: idle slots / all slots."""
    return float((np.asarray(table) == 0).mean())


def zero_memory_per_rank(n_params: float, n_ranks: int, stage: int, k: float = 12.0) -> float:
    """Bytes per rank of mixed-precision Adam training (ZeRO paper's model); stage 0 is plain data parallelism."""
    psi, n = float(n_params), n_ranks
    if stage == 0:
        return (2 + 2 + k) * psi
    if stage == 1:
        return (2 + 2) * psi + k * psi / n
    if stage == 2:
        return 2 * psi + (2 + k) * psi / n
    if stage == 3:
        return (2 + 2 + k) * psi / n
    raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage}")


# ---------------------------------------------------------------- real processes (gloo)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(fn: Callable[..., Any], rank: int, world: int, port: int, queue: Any, args: tuple) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world)
        out = fn(rank, world, *args)
        queue.put(pickle.dumps((rank, out, None)))                   # plain bytes: torch's queue would share fds
    except BaseException:                                             # report, never hang the parent
        queue.put(pickle.dumps((rank, None, traceback.format_exc())))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(fn: Callable[..., Any], world_size: int = 2, *args: Any, timeout: float = 60.0) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` on ``world_size`` spawned gloo processes; return the ranks' results.

    ``fn`` must be importable (defined in a module). Raises RuntimeError with the worker's traceback if a rank
    fails, or if the ranks do not all answer within ``timeout`` seconds.
    """
    import queue as _queue

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_entry, args=(fn, r, world_size, port, q, args), daemon=True)
             for r in range(world_size)]
    for pr in procs:
        pr.start()
    results: dict[int, Any] = {}
    try:
        for _ in range(world_size):
            try:
                rank, out, err = pickle.loads(q.get(timeout=timeout))
            except _queue.Empty:
                raise RuntimeError(f"distributed launch timed out after {timeout} s "
                                   f"({len(results)} of {world_size} ranks answered)") from None
            if err is not None:
                raise RuntimeError(f"rank {rank} failed:\n{err}")
            results[rank] = out
    finally:
        for pr in procs:
            pr.join(timeout=5)
            if pr.is_alive():
                pr.terminate()
    return [results[r] for r in range(world_size)]


def ring_allreduce(x: Tensor) -> tuple[Tensor, int]:
    """Ring all-reduce (sum) with point-to-point isend/recv; returns (result, bytes this rank sent)."""
    import torch.distributed as dist

    rank, n = dist.get_rank(), dist.get_world_size()
    right, left = (rank + 1) % n, (rank - 1) % n
    chunks = _chunks(x.reshape(-1), n)
    sent = 0

    def step(send_idx: int, recv_idx: int, add: bool) -> None:
        nonlocal sent
        buf = torch.empty_like(chunks[recv_idx])
        req = dist.isend(chunks[send_idx].contiguous(), right)       # isend: blocking sends in a ring deadlock
        dist.recv(buf, left)
        req.wait()
        sent += chunks[send_idx].numel() * chunks[send_idx].element_size()
        chunks[recv_idx] = chunks[recv_idx] + buf if add else buf

    for s in range(n - 1):
        step((rank - s - 1) % n, (rank - s - 2) % n, add=True)        # reduce-scatter
    for s in range(n - 1):
        step((rank - s) % n, (rank - s - 1) % n, add=False)           # all-gather
    return torch.cat(chunks).reshape(x.shape), sent


def _mlp(seed: int, d: int = 8, h: int = 16) -> nn.Module:
    manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, 1))


def _flat(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    total = 0
    opt = getattr(opt, "optim", opt)                                   # ZeroRedundancyOptimizer wraps a local one
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, Tensor):
                v = v.to_local() if hasattr(v, "to_local") else v
                total += v.numel() * v.element_size()
    return total


def demo_worker(rank: int, world: int, steps: int = 3, ring_size: int = 1001) -> dict[str, Any]:
    """Every multi-process measurement of the chapter in one launch (each launch costs seconds)."""
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    out: dict[str, Any] = {}
    # -- data parallelism: global batch of 16, each rank its contiguous shard; mean loss
    gen = torch_generator(0)
    X, y = torch.randn(16, 8, generator=gen), torch.randn(16, 1, generator=gen)
    Xr, yr = X.chunk(world)[rank], y.chunk(world)[rank]
    scratch, ddp_base = _mlp(1), _mlp(1)
    ddp = DDP(ddp_base)
    opt_s = torch.optim.SGD(scratch.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(ddp.parameters(), lr=0.1)
    for _ in range(steps):
        opt_s.zero_grad()
        F.mse_loss(scratch(Xr), yr).backward()
        for p in scratch.parameters():                                # the whole of data parallelism
            dist.all_reduce(p.grad)
            p.grad /= world
        opt_s.step()
        opt_d.zero_grad()
        F.mse_loss(ddp(Xr), yr).backward()                            # DDP all-reduces in buckets during backward
        opt_d.step()
    out["dp_scratch"], out["dp_ddp"] = _flat(scratch), _flat(ddp_base)
    if rank == 0:
        single = _mlp(1)
        opt = torch.optim.SGD(single.parameters(), lr=0.1)
        for _ in range(steps):
            opt.zero_grad()
            F.mse_loss(single(X), y).backward()
            opt.step()
        out["dp_single"] = _flat(single)
    # -- ring all-reduce from send/recv against dist.all_reduce (uneven chunks: 1001 elements)
    x = torch.randn(ring_size, generator=torch_generator(100 + rank))
    ring, sent = ring_allreduce(x)
    ref = x.clone()
    dist.all_reduce(ref)
    out["ring_err"] = float((ring - ref).abs().max())
    out["ring_bytes_sent"], out["ring_bytes"] = sent, x.numel() * x.element_size()
    # -- tensor-parallel MLP: A (d, h) by columns, B (h, d) by rows, one all-reduce
    g = torch_generator(7)
    d, h = 12, 40
    xt, A, B = torch.randn(5, d, generator=g), torch.randn(d, h, generator=g), torch.randn(h, d, generator=g)
    n_allreduce = 0
    z = F.gelu(xt @ A.chunk(world, dim=1)[rank]) @ B.chunk(world, dim=0)[rank]
    dist.all_reduce(z)
    n_allreduce += 1
    out["tp_err"] = float((z - F.gelu(xt @ A) @ B).abs().max())
    out["tp_allreduces"] = n_allreduce
    # -- optimizer-state bytes: plain Adam, ZeroRedundancyOptimizer (ZeRO-1), FSDP2 fully_shard (ZeRO-3)
    def big() -> nn.Module:
        manual_seed(3)
        return nn.Sequential(*[nn.Linear(64, 64) for _ in range(4)])

    xb = torch.randn(4, 64, generator=torch_generator(rank))
    for name in ("adam", "zero1", "fsdp2"):
        model = big()
        out["n_params"] = sum(p.numel() for p in model.parameters())
        if name == "fsdp2":
            fully_shard(model, mesh=init_device_mesh("cpu", (world,)))
        opt = (ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.Adam, lr=1e-3)
               if name == "zero1" else torch.optim.Adam(model.parameters(), lr=1e-3))
        model(xb).square().mean().backward()
        opt.step()
        out[f"state_bytes_{name}"] = _state_bytes(opt)
        if name == "fsdp2":
            out["param_bytes_fsdp2"] = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
    return out


def demo_worker_fail(rank: int, world: int) -> None:
    """A worker that raises: shows (and tests) how :func:`launch` reports a failing rank."""
    raise ValueError(f"boom on rank {rank}")
