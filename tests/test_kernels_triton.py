import manifold_course.kernels  # noqa: F401  first: chooses GPU or interpreter mode before triton is imported

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from manifold_course.kernels import (MODE, triton_flash_attention, triton_layer_norm, triton_matmul, triton_rms_norm,
                                     triton_softmax, triton_vector_add)
from manifold_course.nn import norms
from manifold_course.systems.benchspec import BenchSpec


MODULES = [triton_vector_add, triton_softmax, triton_matmul, triton_rms_norm, triton_layer_norm,
           triton_flash_attention]
DEVICE = "cuda" if MODE.gpu else "cpu"
DTYPES = [torch.float32, torch.float16]
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="needs a CUDA GPU; on this CPU the same kernels run under the Triton "
                                      "interpreter and are checked by the tests above")


@pytest.fixture
def gen():
    return torch.Generator(device=DEVICE).manual_seed(0)


def randn(*shape, dtype=torch.float32, gen=None, scale=1.0):
    return (torch.randn(*shape, generator=gen, device=DEVICE) * scale).to(dtype)


# ---------------------------------------------------------------- mode


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the kernels run natively (see the GPU tests)")
def test_cpu_launch_goes_through_the_triton_interpreter(monkeypatch, gen):
    from triton.runtime import interpreter

    assert os.environ["TRITON_INTERPRET"] == "1" and MODE.triton_interpret and not MODE.gpu
    assert isinstance(triton_softmax.softmax_kernel, interpreter.InterpretedFunction)
    launches = []
    real_call = interpreter.GridExecutor.__call__

    def counting_call(self, *args, **kwargs):
        launches.append(self.fn.__name__)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(interpreter.GridExecutor, "__call__", counting_call)
    triton_softmax.softmax(randn(3, 5, gen=gen), -1)
    assert launches == ["softmax_kernel"], "the launch should have run in the interpreter's grid loop"


def test_declaring_bench_launches_nothing(monkeypatch):
    from triton.runtime import interpreter
    from triton.runtime.jit import JITFunction

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was launched at import time")

    monkeypatch.setattr(JITFunction, "run", refuse)
    monkeypatch.setattr(interpreter.InterpretedFunction, "run", refuse)
    for module in MODULES:
        importlib.reload(module)                               # module level: kernels, launchers, BENCH only


# ---------------------------------------------------------------- vector add


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 37, 98_317])                  # 98_317 > one interpreter block of 2^16
def test_vector_add_matches_torch_add(gen, dtype, n):
    x, y = randn(n, dtype=dtype, gen=gen), randn(n, dtype=dtype, gen=gen)
    torch.testing.assert_close(triton_vector_add.add(x, y), torch.add(x, y), rtol=0, atol=0)


def test_vector_add_takes_alpha_and_keeps_the_shape(gen):
    x, y = randn(3, 5, 7, gen=gen), randn(3, 5, 7, gen=gen)
    out = triton_vector_add.add(x, y, alpha=-2.5)
    assert out.shape == (3, 5, 7)
    torch.testing.assert_close(out, torch.add(x, y, alpha=-2.5))


def test_vector_add_refuses_broadcasting():
    with pytest.raises(ValueError, match="same shape"):
        triton_vector_add.add(torch.ones(3, device=DEVICE), torch.ones(1, device=DEVICE))


# ---------------------------------------------------------------- softmax


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (37, 1), (1, 37), (13, 781), (3, 5, 129)])
def test_softmax_matches_torch_softmax(gen, dtype, shape):
    x = randn(*shape, dtype=dtype, gen=gen, scale=4.0)
    expected = torch.softmax(x.float(), dim=-1).to(dtype)      # the exact answer, rounded once
    torch.testing.assert_close(triton_softmax.softmax(x, -1), expected)


def test_softmax_of_a_row_of_length_one_is_one(gen):
    assert torch.equal(triton_softmax.softmax(randn(37, 1, gen=gen), -1), torch.ones(37, 1, device=DEVICE))


def test_softmax_is_stable_for_huge_logits(gen):
    x = randn(5, 33, gen=gen) * 1e4                            # exp(1e4) overflows without the max subtraction
    y = triton_softmax.softmax(x, -1)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, torch.softmax(x, -1))


def test_softmax_over_another_axis(gen):
    x = randn(7, 9, 11, gen=gen)
    torch.testing.assert_close(triton_softmax.softmax(x, 1), torch.softmax(x, 1))


# ---------------------------------------------------------------- RMSNorm / LayerNorm


NORM_SHAPES = [(1, 1), (1, 37), (7, 333), (2, 3, 65)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", NORM_SHAPES)
def test_rms_norm_matches_the_reference(gen, dtype, shape):
    x = randn(*shape, dtype=dtype, gen=gen, scale=3.0)
    w = randn(shape[-1], dtype=dtype, gen=gen)
    got = triton_rms_norm.rms_norm(x, w, 1e-6)
    assert got.dtype == norms.rms_norm(x, w, 1e-6).dtype
    torch.testing.assert_close(got, norms.rms_norm(x.float(), w.float(), 1e-6).to(dtype))


def test_rms_norm_keeps_the_reference_dtype_promotion_and_takes_strided_input(gen):
    x = randn(33, 21, dtype=torch.float16, gen=gen).t()       # (21, 33), not contiguous
    w = randn(33, gen=gen)                                     # fp32 gain: the result is fp32, as in the reference
    got = triton_rms_norm.rms_norm(x, w)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, norms.rms_norm(x.float(), w))


def test_rms_norm_accumulates_in_fp32_where_fp16_overflows():
    x = torch.full((3, 333), 300.0, dtype=torch.float16, device=DEVICE)   # x^2 = 90000 > 65504, fp16's largest
    w = torch.ones(333, dtype=torch.float16, device=DEVICE)
    assert not torch.isfinite(x.pow(2)).all()                 # a naive fp16 sum of squares has already overflowed
    torch.testing.assert_close(triton_rms_norm.rms_norm(x, w), torch.ones_like(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", NORM_SHAPES)
def test_layer_norm_matches_the_reference(gen, dtype, shape):
    x = randn(*shape, dtype=dtype, gen=gen, scale=3.0) + 1
    g, b = randn(shape[-1], dtype=dtype, gen=gen), randn(shape[-1], dtype=dtype, gen=gen)
    got = triton_layer_norm.layer_norm(x, g, b, 1e-5)
    assert got.dtype == norms.layer_norm(x, g, b, 1e-5).dtype
    torch.testing.assert_close(got, norms.layer_norm(x.float(), g.float(), b.float(), 1e-5).to(dtype))


def test_layer_norm_two_pass_variance_survives_a_large_mean(gen):
    x = 1000 + randn(9, 257, gen=gen)                          # E[x^2] - E[x]^2 would cancel ~6 of fp32's 7 digits
    g, b = torch.ones(257, device=DEVICE), torch.zeros(257, device=DEVICE)
    expected = norms.layer_norm(x.double(), g.double(), b.double()).float()
    torch.testing.assert_close(triton_layer_norm.layer_norm(x, g, b), expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- matmul


MATMUL_TOL = {torch.float32: dict(rtol=1e-5, atol=1e-4), torch.float16: dict(rtol=2e-3, atol=1e-2)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, N, K", [(1, 1, 1), (1, 37, 29), (37, 1, 45), (67, 45, 129),
                                     (600, 70, 150)])       # 600 rows: 10 tile-rows, a group of 8 and a tail of 2
def test_matmul_matches_torch_matmul(gen, dtype, M, N, K):
    a, b = randn(M, K, dtype=dtype, gen=gen), randn(K, N, dtype=dtype, gen=gen)
    expected = (a.double() @ b.double()).to(dtype)              # fp32 accumulation, rounded once
    torch.testing.assert_close(triton_matmul.matmul(a, b), expected, **MATMUL_TOL[dtype])


def test_matmul_takes_transposed_operands(gen):
    a, b = randn(45, 67, gen=gen).t(), randn(71, 45, gen=gen).t()   # (67, 45) and (45, 71), column-major
    torch.testing.assert_close(triton_matmul.matmul(a, b), torch.matmul(a, b), **MATMUL_TOL[torch.float32])


def test_matmul_of_an_empty_inner_dimension_is_zero():
    out = triton_matmul.matmul(torch.ones(3, 0, device=DEVICE), torch.ones(0, 5, device=DEVICE))
    assert torch.equal(out, torch.zeros(3, 5, device=DEVICE))


def test_matmul_rejects_mismatched_shapes_and_dtypes():
    with pytest.raises(ValueError, match="columns of A must match the rows of B"):
        triton_matmul.matmul(torch.ones(3, 4, device=DEVICE), torch.ones(5, 6, device=DEVICE))
    with pytest.raises(TypeError, match="one dtype"):
        triton_matmul.matmul(torch.ones(3, 4, device=DEVICE), torch.ones(4, 6, device=DEVICE, dtype=torch.float16))


# ---------------------------------------------------------------- FlashAttention


ATTN_TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float16: dict(rtol=5e-3, atol=5e-3)}


def sdpa_fp32(q, k, v, **kwargs):
    return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), **kwargs).to(q.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("B, H, T, d", [(1, 1, 1, 16), (1, 2, 37, 40), (2, 3, 97, 64), (1, 1, 150, 24)])
def test_flash_attention_matches_sdpa(gen, dtype, causal, B, H, T, d):
    q, k, v = (randn(B, H, T, d, dtype=dtype, gen=gen) for _ in range(3))
    got = triton_flash_attention.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(got, sdpa_fp32(q, k, v, is_causal=causal), **ATTN_TOL[dtype])


@pytest.mark.parametrize("causal", [False, True])
def test_flash_attention_with_fewer_queries_than_keys(gen, causal):
    q, k, v = randn(1, 2, 37, 32, gen=gen), randn(1, 2, 101, 32, gen=gen), randn(1, 2, 101, 32, gen=gen)
    got = triton_flash_attention.scaled_dot_product_attention(q, k, v, is_causal=causal)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)   # causal: top-left aligned, j <= i
    torch.testing.assert_close(got, expected, **ATTN_TOL[torch.float32])


def test_flash_attention_gqa_scale_and_strided_inputs(gen):
    q = randn(2, 37, 4, 32, gen=gen).transpose(1, 2)           # (B, H, T, d) as a view of (B, T, H, d)
    k, v = randn(2, 2, 37, 32, gen=gen), randn(2, 2, 37, 32, gen=gen)   # 2 kv heads for 4 query heads
    got = triton_flash_attention.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3, enable_gqa=True)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3, enable_gqa=True)
    torch.testing.assert_close(got, expected, **ATTN_TOL[torch.float32])


def test_flash_attention_softmax_survives_large_scores(gen):
    q, k = randn(1, 1, 33, 16, gen=gen, scale=30.0), randn(1, 1, 33, 16, gen=gen, scale=30.0)
    v = randn(1, 1, 33, 16, gen=gen)
    got = triton_flash_attention.scaled_dot_product_attention(q, k, v)   # scores ~ +-1000: exp overflows naively
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q.double(), k.double(), v.double()).float(),
                               **ATTN_TOL[torch.float32])


def test_flash_attention_refuses_masks_and_dropout():
    q = torch.ones(1, 1, 3, 16, device=DEVICE)
    with pytest.raises(NotImplementedError, match="is_causal"):
        triton_flash_attention.scaled_dot_product_attention(q, q, q, attn_mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(NotImplementedError):
        triton_flash_attention.scaled_dot_product_attention(q, q, q, dropout_p=0.1)


# ---------------------------------------------------------------- benchmark declarations


def all_specs():
    return [spec for module in MODULES for spec in module.BENCH]


def test_every_module_declares_bench_specs_with_the_right_measure():
    specs = all_specs()
    assert all(isinstance(s, BenchSpec) for s in specs) and all(m.BENCH for m in MODULES)
    assert len({s.name for s in specs}) == len(specs), "benchmark names must be unique"
    for s in specs:
        assert s.bound in ("memory", "compute")
        if s.bound == "memory":
            assert s.bytes_moved is not None, f"{s.name}: a memory-bound kernel reports GB/s from bytes_moved"
        else:
            assert s.flops is not None, f"{s.name}: a compute-bound kernel reports TFLOP/s from flops"


def test_bench_sizes_and_counts_are_the_named_ones():
    by_name = {s.name: s for s in all_specs()}
    assert by_name["vector_add"].sizes == [2**28]
    assert by_name["vector_add"].bytes_moved(2**28, torch.float32) == 3 * 4 * 2**28
    assert (4096, 8192) in by_name["softmax"].sizes and (4096, 32768) in by_name["softmax"].sizes
    assert by_name["softmax"].bytes_moved((4096, 8192), torch.float16) == 2 * 2 * 4096 * 8192
    assert by_name["rms_norm"].sizes == [(4096, 8192)]
    mm = by_name["matmul"]
    assert mm.sizes == [(4096, 4096, 4096)] and tuple(mm.dtypes) == (torch.float16,) and mm.bound == "compute"
    assert mm.flops((4096, 4096, 4096)) == 2 * 4096**3
    full, causal = by_name["flash_attention"], by_name["flash_attention_causal"]
    assert full.sizes == causal.sizes == [(4, 32, 4096, 64)] and tuple(full.dtypes) == (torch.float16,)
    assert full.flops((4, 32, 4096, 64)) == 4 * 4 * 32 * 4096**2 * 64 == 2 * causal.flops((4, 32, 4096, 64))


SMALL = {"vector_add": 1001, "softmax": (5, 77), "matmul": (33, 17, 45), "rms_norm": (5, 77),
         "layer_norm": (5, 77), "flash_attention": (1, 2, 37, 16), "flash_attention_causal": (1, 2, 37, 16)}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bench_kernel_and_reference_agree_on_the_same_inputs(name):
    spec = {s.name: s for s in all_specs()}[name]
    args = spec.make_inputs(SMALL[name], torch.float32, DEVICE)
    torch.testing.assert_close(spec.kernel(*args), spec.reference(*args), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- PTX without a GPU


PTX_SCRIPT = textwrap.dedent("""
    import manifold_course.kernels                     # TRITON_INTERPRET=0 in the environment: compiled mode
    import triton
    from triton.backends.compiler import GPUTarget
    from manifold_course.kernels.triton_matmul import matmul_kernel
    tiles = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=32, GROUP_M=8, DOT_DTYPE=triton.language.float16,
                 INPUT_PRECISION="ieee")
    signature = {name: "i32" for name in matmul_kernel.arg_names}
    signature.update(t_a="*fp16", t_b="*fp16", t_c="*fp16", **{name: "constexpr" for name in tiles})
    source = triton.compiler.ASTSource(fn=matmul_kernel, signature=signature, constexprs=tiles)
    kernel = triton.compile(source, target=GPUTarget("cuda", 80, 32), options=dict(num_warps=4, num_stages=3))
    print(kernel.asm["ptx"])
""")


def test_triton_compiles_the_matmul_kernel_to_ptx_for_sm80_without_a_gpu(tmp_path):
    from triton.backends import backends

    if "nvidia" not in backends:
        pytest.skip("this triton build has no NVIDIA backend to compile with")
    # A fresh process: once the interpreter has run a kernel that calls tl.max / tl.sum (jit functions of
    # triton's standard library), it leaves triton.language patched, and compiling in that process fails.
    env = dict(os.environ, TRITON_INTERPRET="0", TRITON_CACHE_DIR=str(tmp_path), TRITON_DEFAULT_FP_FUSION="1")
    done = subprocess.run([sys.executable, "-c", PTX_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ptx = done.stdout
    assert ".target sm_80" in ptx
    assert "mma.sync.aligned" in ptx and ".f16.f16.f32" in ptx, "tl.dot on fp16 should become tensor-core MMAs " \
                                                                 "accumulating in fp32"


H100_SCRIPT = textwrap.dedent("""
    import json, torch, triton
    import manifold_course.kernels as kernels          # TRITON_INTERPRET=0 in the environment: compiled mode
    from triton.backends.compiler import GPUTarget
    from manifold_course.kernels import (triton_flash_attention as fa, triton_layer_norm as ln, triton_matmul as mm,
                                         triton_rms_norm as rn, triton_softmax as sm, triton_vector_add as va)
    assert not kernels.MODE.triton_interpret
    POINTER = {torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.float32: "*fp32"}

    class Capture:                                     # stands in for kernel[grid]: records the launch
        def __init__(self, kernel):
            self.kernel, self.launches = kernel, []
        def __getitem__(self, grid):
            return lambda *args, **kwargs: self.launches.append((args, kwargs))

    def compile_for_h100(kernel, args, kwargs):
        # about the signature the JIT would specialize: ints equal to 1 become constants, multiples of 16
        # (and tensor pointers) are marked divisible by 16
        options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages") if k in kwargs}
        signature, constants, attrs = {}, dict(kwargs), {}
        for i, name in enumerate(kernel.arg_names[:len(args)]):
            value = args[i]
            if torch.is_tensor(value):
                signature[name], attrs[(i,)] = POINTER[value.dtype], [["tt.divisibility", 16]]
            elif isinstance(value, float):
                signature[name] = "fp32"
            elif value == 1:
                signature[name], constants[name] = "constexpr", 1
            else:
                signature[name] = "i32"
                if value % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
        signature.update({name: "constexpr" for name in kwargs})
        source = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constants, attrs=attrs)
        return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)

    def meta(*shape, dtype):
        return torch.empty(*shape, dtype=dtype, device="meta")

    def bench_launches(dt):                            # (module, kernel name, launch at a BENCH size)
        x, w, qkv = meta(4096, 8192, dtype=dt), meta(8192, dtype=dt), [meta(4, 32, 4096, 64, dtype=dt)] * 3
        square = meta(4096, 4096, dtype=dt)
        memory_bound = [(va, "add_kernel", lambda: va.add(meta(2**28, dtype=dt), meta(2**28, dtype=dt))),
                        (sm, "softmax_kernel", lambda: sm.softmax(x, -1)),
                        (sm, "softmax_kernel", lambda: sm.softmax(meta(4096, 32768, dtype=dt), -1)),
                        (rn, "rms_norm_kernel", lambda: rn.rms_norm(x, w)),
                        (ln, "layer_norm_kernel", lambda: ln.layer_norm(x, w, w))]
        compute_bound = [(mm, "matmul_kernel", lambda: mm.matmul(square, square)),
                         (fa, "flash_attention_kernel", lambda: fa.scaled_dot_product_attention(*qkv)),
                         (fa, "flash_attention_kernel", lambda: fa.scaled_dot_product_attention(*qkv, is_causal=True))]
        return (memory_bound if dt != torch.bfloat16 else []) + compute_bound

    cases = [case for dt in (torch.float16, torch.bfloat16, torch.float32) for case in bench_launches(dt)]
    report = []
    for module, name, launch in cases:
        kernel = getattr(module, name)
        setattr(module, name, Capture(kernel))
        try:
            launch()
            (args, kwargs), = getattr(module, name).launches
        finally:
            setattr(module, name, kernel)
        compiled = compile_for_h100(kernel, args, dict(kwargs))
        report.append(dict(kernel=name, shared=compiled.metadata.shared, wgmma="wgmma" in compiled.asm["ptx"]))
    print(json.dumps(report))
""")


def test_gpu_launch_configs_compile_for_an_h100_without_a_gpu(tmp_path):
    from triton.backends import backends

    if "nvidia" not in backends:
        pytest.skip("this triton build has no NVIDIA backend to compile with")
    env = dict(os.environ, TRITON_INTERPRET="0", TRITON_CACHE_DIR=str(tmp_path), TRITON_DEFAULT_FP_FUSION="1")
    done = subprocess.run([sys.executable, "-c", H100_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report) == 19
    for entry in report:
        assert entry["shared"] <= 227 * 1024, f"{entry}: more shared memory than an H100 block may use (227 KiB)"
    # fp16 / bf16 matmul and attention use Hopper's warp-group MMA; fp32 at "ieee" precision does not
    assert [e["wgmma"] for e in report if e["kernel"] == "matmul_kernel"] == [True, True, False]


# ---------------------------------------------------------------- GPU only


@needs_gpu
def test_gpu_kernels_run_natively():
    from triton.runtime.jit import JITFunction

    assert not MODE.triton_interpret
    for module, name in [(triton_vector_add, "add_kernel"), (triton_softmax, "softmax_kernel"),
                         (triton_matmul, "matmul_kernel"), (triton_rms_norm, "rms_norm_kernel"),
                         (triton_layer_norm, "layer_norm_kernel"),
                         (triton_flash_attention, "flash_attention_kernel")]:
        assert isinstance(getattr(module, name), JITFunction), f"{name} is not compiled for the GPU"


@needs_gpu
def test_gpu_bf16_matches_the_references():
    g = torch.Generator(device="cuda").manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g, device="cuda").to(torch.bfloat16)

    tol = dict(rtol=2e-2, atol=2e-2)
    x, y = r(98_317), r(98_317)
    torch.testing.assert_close(triton_vector_add.add(x, y), x + y)
    s = r(131, 8193) * 4
    torch.testing.assert_close(triton_softmax.softmax(s, -1), torch.softmax(s.float(), -1).bfloat16(), **tol)
    w, b = r(8193), r(8193)
    torch.testing.assert_close(triton_rms_norm.rms_norm(s, w), norms.rms_norm(s.float(), w.float()).bfloat16(), **tol)
    torch.testing.assert_close(triton_layer_norm.layer_norm(s, w, b),
                               norms.layer_norm(s.float(), w.float(), b.float()).bfloat16(), **tol)
    a, bm = r(1000, 515), r(515, 777)
    torch.testing.assert_close(triton_matmul.matmul(a, bm), (a.float() @ bm.float()).bfloat16(), rtol=2e-2, atol=1e-1)
    q, k, v = r(2, 4, 1000, 64), r(2, 4, 1000, 64), r(2, 4, 1000, 64)
    for causal in (False, True):
        torch.testing.assert_close(triton_flash_attention.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                   sdpa_fp32(q, k, v, is_causal=causal), **tol)


@needs_gpu
@pytest.mark.parametrize("name", ["softmax", "rms_norm", "layer_norm", "matmul", "flash_attention",
                                  "flash_attention_causal"])
def test_gpu_kernels_at_a_bench_size_in_fp16(name):
    spec = {s.name: s for s in all_specs()}[name]
    size = {"matmul": (2048, 2048, 2048), "flash_attention": (1, 8, 2048, 64),
            "flash_attention_causal": (1, 8, 2048, 64)}.get(name, spec.sizes[0])
    args = spec.make_inputs(size, torch.float16, "cuda")
    tol = dict(rtol=2e-2, atol=5e-2) if name == "matmul" else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(spec.kernel(*args), spec.reference(*args), **tol)
