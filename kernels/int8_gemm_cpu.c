/* int8 x int8 -> fp32 GEMM for x86 CPUs with AVX512-VNNI, built and loaded by kernels/int8_gemm_cpu.py.
 *
 * out[m, n] = float(sum_k (a[m, k] - 128) * w[n, k]) * mult[n]
 *
 * a: the activations rounded to u8 around a zero point of 128 (`quantize_rows`), [M, K].
 * w: int8 weights, interleaved by `interleave` in kernels/int8_gemm_cpu.py: output channels in
 *    groups of 4, and within a group 64-byte chunks of each channel's row in turn, so a group
 *    streams from memory as one sequential run and needs no other packing (fbgemm's packing took
 *    most of an int8 load). K is a multiple of 64 and N of 4.
 * comp: 128 * sum_k w[n, k] (the zero point's share of the sums).
 *
 * The int32 sums are exact, so each output depends only on its own row of a, at any M: a verify
 * pass computes what AR's one-row steps compute. Activation rounding and the epilogue are fbgemm's
 * (fma(x, 127, 128) rounded to nearest even; float(sum) * mult), so outputs equal fbgemm's bit for bit.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* Row m of x (fp32, [M, K], already divided by its absmax) to u8: round(x * inv + 128), clamped. */
void quantize_rows(int M, int K, const float *x, float inv, uint8_t *out) {
    const __m512 vinv = _mm512_set1_ps(inv), zero_point = _mm512_set1_ps(128.f);
    for (int64_t i = 0, n = (int64_t)M * K; i < n;) {
        if (i + 16 <= n) {
            __m512i q = _mm512_cvtps_epi32(_mm512_fmadd_ps(_mm512_loadu_ps(x + i), vinv, zero_point));
            q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(255)), _mm512_setzero_si512());
            _mm_storeu_si128((__m128i *)(out + i), _mm512_cvtepi32_epi8(q));
            i += 16;
        } else {
            int v = (int)nearbyintf(fmaf(x[i], inv, 128.f));
            out[i++] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
    }
}

/* acc += 4-byte dot products of u8 a and s8 b, per int32 lane. Inline assembly: gcc's intrinsic
 * copied every accumulator on each use (twice the instructions in the inner loop). */
#define DP(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

/* The 16-lane sums of four vectors, as one vector of 4. */
static inline __m128i sum4(__m512i a, __m512i b, __m512i c, __m512i d) {
    __m256i a1 = _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
    __m256i b1 = _mm256_add_epi32(_mm512_castsi512_si256(b), _mm512_extracti64x4_epi64(b, 1));
    __m256i c1 = _mm256_add_epi32(_mm512_castsi512_si256(c), _mm512_extracti64x4_epi64(c, 1));
    __m256i d1 = _mm256_add_epi32(_mm512_castsi512_si256(d), _mm512_extracti64x4_epi64(d, 1));
    __m256i abcd = _mm256_hadd_epi32(_mm256_hadd_epi32(a1, b1), _mm256_hadd_epi32(c1, d1));
    return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

/* comp for `gemm`: 128 x the sum of each output channel's weights, from the interleaved w. (torch's
 * int8 row sum ran at 0.4 GB/s, 8 s of a 3B load; this runs at the speed of reading w.) */
void zero_point_shares(int N, int K, const int8_t *w, int32_t *comp, int threads) {
    const __m512i ones = _mm512_set1_epi8(1);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int g = 0; g < N / 4; g++) {
        const int8_t *group = w + (int64_t)g * 4 * K;
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
        for (int k = 0; k < K; k += 64) {
            const int8_t *chunk = group + (int64_t)k * 4;
            DP(s0, ones, _mm512_loadu_si512(chunk));
            DP(s1, ones, _mm512_loadu_si512(chunk + 64));
            DP(s2, ones, _mm512_loadu_si512(chunk + 128));
            DP(s3, ones, _mm512_loadu_si512(chunk + 192));
        }
        _mm_storeu_si128((__m128i *)(comp + 4 * g), _mm_slli_epi32(sum4(s0, s1, s2, s3), 7));
    }
}

#define MAX_ROWS 6 /* rows per tile: 6 x 4 accumulators, 4 weight registers and one row's */

/* Rows [0, ROWS) of a against one group of 4 output channels; prefetches `next` (the next group)
 * while the weights stream in. ROWS is a constant in each caller, so the unused rows' code folds away. */
static inline __attribute__((always_inline)) void tile(const int ROWS, int K, const uint8_t *a,
                                                       const int8_t *w, const int8_t *next,
                                                       const int32_t *comp, const float *mult,
                                                       float *out, int ldo) {
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00,
            c12 = c00, c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00,
            c32 = c00, c33 = c00, c40 = c00, c41 = c00, c42 = c00, c43 = c00, c50 = c00, c51 = c00,
            c52 = c00, c53 = c00;
    for (int k = 0; k < K; k += 64) {
        const int8_t *chunk = w + (int64_t)k * 4;
        __m512i w0 = _mm512_loadu_si512(chunk), w1 = _mm512_loadu_si512(chunk + 64),
                w2 = _mm512_loadu_si512(chunk + 128), w3 = _mm512_loadu_si512(chunk + 192);
        for (int j = 0; j < 256; j += 64) _mm_prefetch((const char *)(next + (int64_t)k * 4 + j), _MM_HINT_T0);
#define ROW(i)                                                                                      \
        if (ROWS > i) {                                                                             \
            __m512i x = _mm512_loadu_si512(a + (int64_t)i * K + k);                                 \
            DP(c##i##0, x, w0); DP(c##i##1, x, w1); DP(c##i##2, x, w2); DP(c##i##3, x, w3);         \
        }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
    const __m128i zero_point_share = _mm_loadu_si128((const __m128i *)comp);
    const __m128 scale = _mm_loadu_ps(mult);
#define STORE(i)                                                                                    \
    if (ROWS > i) {                                                                                 \
        __m128i sums = _mm_sub_epi32(sum4(c##i##0, c##i##1, c##i##2, c##i##3), zero_point_share);   \
        _mm_storeu_ps(out + (int64_t)i * ldo, _mm_mul_ps(_mm_cvtepi32_ps(sums), scale));            \
    }
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
#undef STORE
}

typedef void (*tile_fn)(int, const uint8_t *, const int8_t *, const int8_t *, const int32_t *,
                        const float *, float *, int);
#define TILE(R)                                                                                     \
    static void tile##R(int K, const uint8_t *a, const int8_t *w, const int8_t *next,               \
                        const int32_t *comp, const float *mult, float *out, int ldo) {              \
        tile(R, K, a, w, next, comp, mult, out, ldo);                                               \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
static const tile_fn tiles[MAX_ROWS + 1] = {0, tile1, tile2, tile3, tile4, tile5, tile6};

/* out (fp32, row stride ldo) = the product above, the groups of output channels split among
 * `threads` OpenMP threads (torch's own runtime: this library links the libgomp torch loaded).
 * Each group's rows are taken in tiles of equal size (8 rows: 4 + 4), its weights read from memory
 * once and from the cache for the tiles after the first. */
void gemm(int M, int N, int K, const uint8_t *a, const int8_t *w, const int32_t *comp,
          const float *mult, float *out, int ldo, int threads) {
    const int groups = N / 4, tiles_per_group = (M + MAX_ROWS - 1) / MAX_ROWS;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int g = 0; g < groups; g++) {
        const int8_t *group = w + (int64_t)g * 4 * K;
        for (int m = 0, t = 0; m < M; t++) {
            const int rows = (M - m) / (tiles_per_group - t);
            const int8_t *next = t == 0 && g + 1 < groups ? group + 4 * K : group;
            tiles[rows](K, a + (int64_t)m * K, group, next, comp + 4 * g, mult + 4 * g,
                        out + (int64_t)m * ldo + 4 * g, ldo);
            m += rows;
        }
    }
}
