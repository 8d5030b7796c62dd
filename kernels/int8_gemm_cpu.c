/* int8 x int8 -> fp32 GEMM for x86 CPUs with AVX512-VNNI, built and loaded by kernels/int8_gemm_cpu.py.
 *
 * out[m, n] = float(sum_k (a[m, k] - 128) * w[n, k]) * mult[n] * row_scale[m], fp32 or bf16
 *
 * a: the activations [M, K], each row divided by its absmax (row_scale) and rounded to u8 around a
 *    zero point of 128 (`round_rows`).
 * w: int8 weights in a VNNI layout made by `interleave` in kernels/int8_gemm_cpu.py,
 *    [N / 32][K / 4][32][4]: output channels in panels of 32; in a panel, for each 4 consecutive k,
 *    the 32 channels' 4 bytes in turn. A 64-byte vector is then 16 channels x 4 k, which vpdpbusd
 *    multiplies by 4 bytes of one activation row broadcast to every lane: each lane sums its own
 *    channel, so no horizontal sums are left at the end, and a panel streams from memory as one
 *    sequential run, read once whatever the number of rows. N is a multiple of 32 and K of 4.
 * comp: 128 * sum_k w[n, k] (the zero point's share of the sums).
 *
 * The int32 sums are exact, so each output depends only on its own row of a, at any M: a verify
 * pass computes what AR's one-row steps compute. Activation rounding and the epilogue are fbgemm's
 * (x / absmax, then fma(., 127, 128) rounded to nearest even; float(sum) * mult * row_scale), so
 * outputs equal fbgemm's (and torch's product by the row scale) bit for bit.
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* 16 values of x from element i: fp32, or bf16 (exactly widened) where `bf16`. */
static inline __m512 load16(const void *x, int64_t i, int bf16) {
    if (!bf16) return _mm512_loadu_ps((const float *)x + i);
    const __m256i half = _mm256_loadu_si256((const __m256i *)((const uint16_t *)x + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

static inline float load1(const void *x, int64_t i, int bf16) {
    if (!bf16) return ((const float *)x)[i];
    const uint32_t bits = (uint32_t)((const uint16_t *)x)[i] << 16;
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

/* max |x| over the K values of x from element `row` (fp32 or bf16). */
static inline float absmax(const void *x, int64_t row, int K, int bf16) {
    __m512 top = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) top = _mm512_max_ps(top, _mm512_abs_ps(load16(x, row + k, bf16)));
    float amax = _mm512_reduce_max_ps(top);
    for (; k < K; k++) {
        const float v = fabsf(load1(x, row + k, bf16));
        amax = v > amax ? v : amax;
    }
    return amax;
}

/* 16 fp32 to bf16 as torch converts them (to nearest, ties to even; NaN as 0xffff). */
static inline __m256i to_bf16(__m512 v) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    rounded = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), _mm512_set1_epi32(0xffff), rounded);
    return _mm512_cvtusepi32_epi16(rounded);
}

/* Each row m of x ([M, K], fp32 or bf16) to u8: row_scale[m] = max |x| (at least FLT_MIN), then
 * round(x / row_scale * inv + 128) with the division and an fma in fp32, clamped to [0, 255]: the
 * steps engine/model/quantize.py's W8A8 takes in torch and fbgemm, one pass over the row. */
void round_rows(int M, int K, const void *x, int bf16, float inv, float *row_scale, uint8_t *out) {
    const __m512 vinv = _mm512_set1_ps(inv), zero_point = _mm512_set1_ps(128.f);
    for (int m = 0; m < M; m++) {
        const int64_t row = (int64_t)m * K;
        uint8_t *a = out + row;
        float amax = absmax(x, row, K, bf16);
        amax = amax < FLT_MIN ? FLT_MIN : amax;
        row_scale[m] = amax;
        const __m512 vamax = _mm512_set1_ps(amax);
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            const __m512 unit = _mm512_div_ps(load16(x, row + k, bf16), vamax);
            __m512i q = _mm512_cvtps_epi32(_mm512_fmadd_ps(unit, vinv, zero_point));
            q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(255)), _mm512_setzero_si512());
            _mm_storeu_si128((__m128i *)(a + k), _mm512_cvtepi32_epi8(q));
        }
        for (; k < K; k++) {
            const int v = (int)nearbyintf(fmaf(load1(x, row + k, bf16) / amax, inv, 128.f));
            a[k] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
    }
}

/* Output channels [0, n) of a bf16 weight [n, K] (n a multiple of 32) to int8 in the layout above
 * (w: their panels), one scale per channel: q = round(x * (127 / amax)) (ties to even, 127 / amax
 * as torch computes it), scale = amax / 127, amax = max |x| but at least 1e-12. These are
 * quantize_rows' steps in engine/model/quantize.py, in the same fp32 operations, so the bytes are
 * the same; here in one pass over each row, written straight into its panel (2.5x faster). */
void quantize_weight(int n, int K, const uint16_t *x, int8_t *w, float *scale, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int r = 0; r < n; r++) {
        const int64_t row = (int64_t)r * K;
        float amax = absmax(x, row, K, 1);
        amax = amax < 1e-12f ? 1e-12f : amax;
        const float inverse = (1.f / amax) * 127.f; /* torch's `127 / amax`: its reciprocal, times 127 */
        scale[r] = amax / 127.f;
        int8_t *out = w + (int64_t)(r / 32) * 32 * K + (r % 32) * 4; /* its 4 bytes of each step */
        const __m512 vinverse = _mm512_set1_ps(inverse);
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            int32_t steps[4]; /* 16 int8: 4 steps of 4 bytes, 128 bytes apart in the panel */
            const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(load16(x, row + k, 1), vinverse));
            _mm_storeu_si128((__m128i *)steps, _mm512_cvtepi32_epi8(q));
            for (int j = 0; j < 4; j++) memcpy(out + (int64_t)(k / 4 + j) * 128, &steps[j], 4);
        }
        for (; k < K; k++) out[(int64_t)(k / 4) * 128 + k % 4] = (int8_t)nearbyintf(load1(x, row + k, 1) * inverse);
    }
}

/* acc += 4-byte dot products of u8 a and s8 b, per int32 lane. Inline assembly: gcc's intrinsic
 * copied every accumulator on each use (twice the instructions in the inner loop). The s8
 * operand is the one vpdpbusd can broadcast from memory, and a is the u8 one, so a's 4 bytes are
 * broadcast into a register first (a load, no ALU slot on Zen 4: one vpbroadcastd per vpdpbusd
 * still runs one vpdpbusd a cycle). */
#define DP(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

/* comp for `gemm`: 128 x the sum of each output channel's weights, from w in its layout (where
 * torch's int8 row sum ran at 0.4 GB/s, 8 s of a 3B load, this runs at the speed of reading w). */
void zero_point_shares(int N, int K, const int8_t *w, int32_t *comp, int threads) {
    const __m512i ones = _mm512_set1_epi8(1);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int p = 0; p < N / 32; p++) {
        const int8_t *panel = w + (int64_t)p * 32 * K;
        __m512i sum0 = _mm512_setzero_si512(), sum1 = sum0;
        for (int k = 0; k < K; k += 4, panel += 128) {
            DP(sum0, ones, _mm512_loadu_si512(panel));
            DP(sum1, ones, _mm512_loadu_si512(panel + 64));
        }
        _mm512_storeu_si512(comp + 32 * p, _mm512_slli_epi32(sum0, 7));
        _mm512_storeu_si512(comp + 32 * p + 16, _mm512_slli_epi32(sum1, 7));
    }
}

/* A tile is up to MAX_ROWS rows of a against one panel: per 4 k it loads the panel's 2 weight
 * vectors and broadcasts each row's 4 bytes for 2 vpdpbusd. 14 x 2 accumulators, 2 weight registers
 * and one broadcast row fill 31 of the 32 vector registers. In cache this runs at 0.92-0.97 of one
 * vpdpbusd a cycle (the limit on Zen 4: 64 multiply-adds a cycle) from 8 rows up, where the 6 x 4
 * tiles with horizontal sums of the previous layout made 0.75-0.9.
 *
 * The first tile of a panel reads the weights from memory, the later ones from the L2 cache (a
 * panel: 32 * K bytes, 96 or 288 KB). Per weight byte the first tile does as many multiplies as it
 * has rows, so it is made as tall as the registers allow: more of the arithmetic overlaps the memory
 * reads (16 rows as 14 + 2 take 0.92-0.95 of the time of 8 + 8). The later tiles have at most
 * LATER_ROWS rows: 8-row tiles are the fastest in cache (12 or 14 rows: 3-5% slower at 72 rows). */
#define MAX_ROWS 14
#define LATER_ROWS 8

/* Rows [0, ROWS) of a against the panel w. ROWS is a constant in each caller, so the loops unroll
 * and the accumulators stay in registers. */
static inline __attribute__((always_inline)) void tile(const int ROWS, int K, const uint8_t *a,
                                                       const float *row_scale, const int8_t *w,
                                                       const int32_t *comp, const float *mult,
                                                       void *out, int out_bf16, int ldo) {
    __m512i acc[MAX_ROWS][2];
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (int k = 0; k < K; k += 4, w += 128) {
        const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 64);
#pragma GCC unroll 14
        for (int i = 0; i < ROWS; i++) {
            int32_t four; /* a[i, k:k+4], broadcast to every lane */
            memcpy(&four, a + (int64_t)i * K + k, 4);
            const __m512i x = _mm512_set1_epi32(four);
            DP(acc[i][0], x, w0);
            DP(acc[i][1], x, w1);
        }
        /* The weights stay live to the end of the step: otherwise gcc 12 reuses a weight register
         * for the last accumulator and copies it there and back (2 extra moves a step; with 2 rows
         * this line is what adds them). */
        if (ROWS > 2) __asm__("" : : "v"(w0), "v"(w1));
    }
#pragma GCC unroll 2
    for (int j = 0; j < 2; j++) {
        const __m512i zero_point_share = _mm512_loadu_si512(comp + 16 * j);
        const __m512 scale = _mm512_loadu_ps(mult + 16 * j);
#pragma GCC unroll 14
        for (int i = 0; i < ROWS; i++) {
            const __m512 sums = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], zero_point_share));
            const __m512 product = _mm512_mul_ps(_mm512_mul_ps(sums, scale), _mm512_set1_ps(row_scale[i]));
            const int64_t at = (int64_t)i * ldo + 16 * j;
            if (out_bf16)
                _mm256_storeu_si256((__m256i *)((uint16_t *)out + at), to_bf16(product));
            else
                _mm512_storeu_ps((float *)out + at, product);
        }
    }
}

typedef void (*tile_fn)(int, const uint8_t *, const float *, const int8_t *, const int32_t *,
                        const float *, void *, int, int);
#define TILE(R)                                                                                     \
    static void tile##R(int K, const uint8_t *a, const float *row_scale, const int8_t *w,           \
                        const int32_t *comp, const float *mult, void *out, int out_bf16, int ldo) { \
        tile(R, K, a, row_scale, w, comp, mult, out, out_bf16, ldo);                                \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6) TILE(7) TILE(8) TILE(9) TILE(10) TILE(11) TILE(12)
TILE(13) TILE(14)
static const tile_fn tiles[MAX_ROWS + 1] = {0,      tile1,  tile2,  tile3,  tile4,
                                            tile5,  tile6,  tile7,  tile8,  tile9,
                                            tile10, tile11, tile12, tile13, tile14};

/* out (fp32, row stride ldo) = the product above, the panels (32 output channels each) split among
 * `threads` OpenMP threads (torch's own runtime: this library links the libgomp torch loaded). A
 * panel's rows: a first tile of up to MAX_ROWS, then tiles of equal size up to LATER_ROWS (16 rows:
 * 14 + 2; 32: 14 + 6 + 6 + 6; 72: 14 + 7 x 2 + 8 x 6). The hardware prefetcher follows the weight
 * stream; software prefetch (1-8 KB ahead in the stream, or the next panel spread over the tiles),
 * K blocks that interleave the row tiles (an L1-sized chunk of weights reused by every tile), and
 * splitting the rows rather than the channels between the threads all measured slower or no faster. */
void gemm(int M, int N, int K, const uint8_t *a, const float *row_scale, const int8_t *w,
          const int32_t *comp, const float *mult, void *out, int out_bf16, int ldo, int threads) {
    const int size = out_bf16 ? 2 : 4; /* bytes per output */
    if (M <= 0) return;
    const int panels = N / 32;
    const int first = M < MAX_ROWS ? M : MAX_ROWS, later = (M - first + LATER_ROWS - 1) / LATER_ROWS;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int p = 0; p < panels; p++) {
        const int8_t *panel = w + (int64_t)p * 32 * K;
        tiles[first](K, a, row_scale, panel, comp + 32 * p, mult + 32 * p, (char *)out + size * 32 * p, out_bf16, ldo);
        for (int m = first, t = 0; m < M; t++) {
            const int rows = (M - m) / (later - t);
            tiles[rows](K, a + (int64_t)m * K, row_scale + m, panel, comp + 32 * p, mult + 32 * p,
                        (char *)out + size * ((int64_t)m * ldo + 32 * p), out_bf16, ldo);
            m += rows;
        }
    }
}
