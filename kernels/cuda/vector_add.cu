// Vector addition in CUDA C: z = x + alpha * y, one thread per element.
//
// The contract of torch.add(input, other, alpha=alpha) for two float32 arrays of n elements.
// Launch with a 1-D grid of ceil(n / blockDim.x) blocks; the last block runs past n, and the
// bounds check `if (i < n)` keeps its extra threads from touching memory that is not theirs.
//
// Memory traffic: 3n floats (read x and y, write z) for n fused multiply-adds: memory-bound.
// Consecutive threads touch consecutive addresses, so a warp's 32 loads coalesce into
// 128-byte transactions.
//
// `extern "C"` keeps the name unmangled, so the PTX entry is `vector_add_kernel` and a driver-API
// loader (cuModuleGetFunction) or a C++ launcher can find it by that name.
// Compile to PTX to read it:  nvcc --ptx -arch=sm_80 vector_add.cu -o vector_add.ptx

extern "C" __global__ void vector_add_kernel(
    const float* __restrict__ x,   // input, n floats
    const float* __restrict__ y,   // input, n floats
    float* __restrict__ z,         // output, n floats: z = x + alpha * y
    float alpha,                   // scalar multiplier of y
    int n)                         // number of elements
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;   // this thread's element
    if (i < n) {                                     // the last block overhangs the array
        z[i] = x[i] + alpha * y[i];                  // 2 loads, 1 FMA, 1 store
    }
}
