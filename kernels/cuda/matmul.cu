// Tiled matrix multiplication in CUDA C: C = A B with shared-memory tiles.
//
// A is M x K, B is K x N, C is M x N, all float32 and row-major (torch.matmul for 2-D matrices).
// Launch with blocks of MATMUL_TILE x MATMUL_TILE threads and a grid of
// ceil(N / MATMUL_TILE) x ceil(M / MATMUL_TILE) blocks; block (bx, by) owns the tile of C whose
// top-left corner is (by * MATMUL_TILE, bx * MATMUL_TILE), thread (tx, ty) owns one element of it.
//
// The block walks along K one tile at a time:
//   1. each thread loads one element of the A tile and one of the B tile into shared memory,
//      zero where the tile hangs over the matrix (M, N, K need not be multiples of the tile);
//   2. __syncthreads(): the tiles are complete before anyone reads them;
//   3. each thread does MATMUL_TILE multiply-adds from shared memory;
//   4. __syncthreads(): everyone is done reading before the tiles are overwritten.
//
// Memory traffic: a naive kernel reads 2K floats from global memory per output (2MNK in all);
// tiling divides that by MATMUL_TILE, because each loaded element is reused MATMUL_TILE times
// from shared memory. cuBLAS goes much further (register tiles, tensor cores, async copies).
// Reference: Kirk & Hwu, "Programming Massively Parallel Processors", tiled matrix multiplication.
// Compile to PTX to read it:  nvcc --ptx -arch=sm_80 matmul.cu -o matmul.ptx

#define MATMUL_TILE 16

extern "C" __global__ void matmul_kernel(
    const float* __restrict__ A,   // input, M x K, row-major
    const float* __restrict__ B,   // input, K x N, row-major
    float* __restrict__ C,         // output, M x N, row-major: C = A B
    int M, int N, int K)
{
    __shared__ float s_a[MATMUL_TILE][MATMUL_TILE];   // the current tile of A
    __shared__ float s_b[MATMUL_TILE][MATMUL_TILE];   // the current tile of B

    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * MATMUL_TILE + ty;          // this thread's C[row][col]
    int col = blockIdx.x * MATMUL_TILE + tx;          // tx varies fastest: a warp reads along a row
    float acc = 0.0f;

    for (int k0 = 0; k0 < K; k0 += MATMUL_TILE) {
        // 1. one element of each tile per thread, zero outside the matrices
        s_a[ty][tx] = (row < M && k0 + tx < K) ? A[row * K + k0 + tx] : 0.0f;
        s_b[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * N + col] : 0.0f;
        __syncthreads();                              // 2. tiles complete
        #pragma unroll
        for (int k = 0; k < MATMUL_TILE; ++k) {       // 3. C[row][col] += A[row][k0+k] B[k0+k][col]
            acc += s_a[ty][k] * s_b[k][tx];
        }
        __syncthreads();                              // 4. reads done before the next load
    }
    if (row < M && col < N) {                         // edge tiles: threads outside C write nothing
        C[row * N + col] = acc;
    }
}
