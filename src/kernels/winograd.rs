//! 3×3 stride-1 convolution by Winograd's minimal filtering, F(2×2, 3×3) (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
//!
//! Each 2×2 output tile comes from a 4×4 input tile: V = Bᵀ d B (adds only), then for each
//! of the 16 transformed positions ξ one GEMM M[ξ] = U[ξ]·V[ξ] over the channels, then
//! Y = Aᵀ M A. That is 16 multiply–adds per tile and channel pair instead of 36, 2.25×
//! fewer, and no im2col copy (9× the input) or col2im scatter. F(2, 3) is used rather
//! than the 4× cheaper F(4, 3) because its transforms only hold 0, ±1 and ±½: its f32
//! error is that of the GEMM, where F(4, 3)'s grows by an order of magnitude.
//!
//! The input gradient of a 3×3 stride-1 convolution is itself one (full correlation of
//! the output gradient with the spatially flipped, channel-transposed kernel), so both
//! directions run through [`conv3x3`] with their own transformed weights.

use gemm::Parallelism;
use rayon::prelude::*;

use super::buffers;
use super::gemm::matmul_strided;
use super::geometry::Pads;
use super::simd::with_wide_vectors;

/// Transformed positions per tile (4×4).
const XI: usize = 16;

/// U[ξ] = (G g Gᵀ)[ξ] for every (output, input) channel pair, laid out [16][c_out][c_in]
/// so that each ξ is a row-major c_out × c_in matrix.
#[derive(Debug)]
pub struct WinogradWeights {
    u: Vec<f32>,
    c_out: usize,
    c_in: usize,
}

impl WinogradWeights {
    /// The forward direction of a 3×3 kernel `weight` [c_out, c_in, 3, 3], row-major.
    pub fn forward(weight: &[f32], c_out: usize, c_in: usize) -> Self {
        Self::transform(c_out, c_in, |o, i, ky, kx| weight[((o * c_in + i) * 3 + ky) * 3 + kx])
    }

    /// The input-gradient direction of the same kernel: flipped in space with its
    /// channels swapped, g'[i][o][ky][kx] = g[o][i][2 − ky][2 − kx].
    pub fn input_gradient(weight: &[f32], c_out: usize, c_in: usize) -> Self {
        Self::transform(c_in, c_out, |i, o, ky, kx| {
            weight[((o * c_in + i) * 3 + (2 - ky)) * 3 + (2 - kx)]
        })
    }

    fn transform(c_out: usize, c_in: usize, g: impl Fn(usize, usize, usize, usize) -> f32) -> Self {
        // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]; done in f64, rounded once.
        const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
        let mut u = vec![0f32; XI * c_out * c_in];
        for o in 0..c_out {
            for i in 0..c_in {
                for a in 0..4 {
                    for b in 0..4 {
                        let mut s = 0f64;
                        for (ky, &ga) in G[a].iter().enumerate() {
                            for (kx, &gb) in G[b].iter().enumerate() {
                                s += ga * g(o, i, ky, kx) as f64 * gb;
                            }
                        }
                        u[((a * 4 + b) * c_out + o) * c_in + i] = s as f32;
                    }
                }
            }
        }
        Self { u, c_out, c_in }
    }
}

/// Sizes of one call: input h×w, output oh×ow, and the tile grid.
#[derive(Debug, Clone, Copy)]
struct Grid {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    /// Tile rows and columns per sample.
    th: usize,
    tw: usize,
}

impl Grid {
    fn new(h: usize, w: usize, pads: Pads) -> Self {
        let oh = h + pads.top + pads.bottom - 2;
        let ow = w + pads.left + pads.right - 2;
        Self {
            h,
            w,
            oh,
            ow,
            th: oh.div_ceil(2),
            tw: ow.div_ceil(2),
        }
    }

    fn per_sample(&self) -> usize {
        self.th * self.tw
    }
}

/// A pointer to the output that chunks of tiles write through: the tiles of different
/// chunks cover disjoint output pixels, but not contiguous slices of the buffer.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: every chunk writes only the pixels of its own tiles (see `output_transform`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// y = clamp(x ⋆ g + bias) for x [n, c_in, h, w] with the given zero padding, stride 1,
/// into y [n, c_out, oh, ow]. Sample s of x starts at x[s·x_stride] and that of y at
/// y[s·y_stride] (a whole tensor, or one operand's channels inside a channel
/// concatenation). Returns (oh, ow). The caller has checked that the padded input is at
/// least 3×3.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(
    weights: &WinogradWeights,
    (x, x_stride): (&[f32], usize),
    n: usize,
    (h, w): (usize, usize),
    pads: Pads,
    bias: Option<&[f32]>,
    clamp: Option<(f32, f32)>,
    (y, y_stride): (&mut [f32], usize),
) -> (usize, usize) {
    let grid = Grid::new(h, w, pads);
    let (c_in, c_out) = (weights.c_in, weights.c_out);
    let per_out = c_out * grid.oh * grid.ow;
    assert!(y_stride >= per_out && (n == 0 || (n - 1) * y_stride + per_out <= y.len()));
    let tiles = n * grid.per_sample();
    let threads = rayon::current_num_threads().max(1);
    // Chunks small enough that one chunk's transformed tiles stay in cache between the
    // input transform, the 16 GEMMs and the output transform, large enough for the GEMM.
    let per_chunk = tiles.div_ceil(threads).clamp(1, chunk_limit(c_in, c_out));
    let chunks = tiles.div_ceil(per_chunk);
    // With fewer chunks than threads (one small sample), the GEMMs take the threads.
    let par = if chunks < threads {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    let split = SplitInput::new((x, x_stride), n, c_in, grid, pads);
    let out = SharedOut(y.as_mut_ptr());
    let out_len = y.len();
    (0..chunks).into_par_iter().for_each_init(
        // Pooled: fresh scratch of this size cost page clearing on every call. A chunk
        // uses the first 16·c·count values of each, and writes them all before reading.
        || {
            let v = buffers::Scratch::new(XI * c_in * per_chunk);
            let m = buffers::Scratch::new(XI * c_out * per_chunk);
            (v, m)
        },
        |(v, m), chunk| {
            let first = chunk * per_chunk;
            let count = per_chunk.min(tiles - first);
            let v = &mut v[..XI * c_in * count];
            let m = &mut m[..XI * c_out * count];
            with_wide_vectors(
                #[inline(always)]
                || input_transform(&split, c_in, grid, first, count, v),
            );
            // V and M hold each channel's 16 transformed rows side by side ([c][ξ][tile]), so
            // a tile run's 16 values land close together; ξ's matrix is every 16th row.
            for xi in 0..XI {
                matmul_strided(
                    c_out,
                    count,
                    c_in,
                    &weights.u[xi * c_out * c_in..(xi + 1) * c_out * c_in],
                    (c_in, 1),
                    &v[xi * count..],
                    (XI * count, 1),
                    (&mut m[xi * count..], XI * count),
                    false,
                    par,
                );
            }
            with_wide_vectors(
                #[inline(always)]
                || output_transform(m, c_out, grid, first, count, bias, clamp, (out, out_len, y_stride)),
            );
        },
    );
    // The chunks cover tiles 0..n·th·tw, and the tiles (2×2 pixels each, cropped at the
    // last row and column since th = ⌈oh/2⌉, tw = ⌈ow/2⌉) cover every pixel of every
    // (sample, channel) plane: every output element was written above.
    buffers::give(split.data);
    (grid.oh, grid.ow)
}

/// Most tiles per chunk: 16 transformed values per tile and channel, in and out, kept
/// under about 1 MiB, but never fewer than 48 tiles (the GEMM's columns).
fn chunk_limit(c_in: usize, c_out: usize) -> usize {
    let bytes_per_tile = XI * (c_in + c_out) * 4;
    ((1 << 20) / bytes_per_tile).clamp(48, 512)
}

/// The tiles first..first + count cut at tile-row boundaries: (sample, tile row, first
/// tile column, number of tiles, position of the first one in the chunk). Both transforms
/// work a run at a time, so their loops run along image rows and vectorise.
fn row_runs(grid: Grid, first: usize, count: usize) -> impl Iterator<Item = (usize, usize, usize, usize, usize)> {
    let per_sample = grid.per_sample();
    let mut t = 0;
    std::iter::from_fn(move || {
        (t < count).then(|| {
            let tile = first + t;
            let (s, rest) = (tile / per_sample, tile % per_sample);
            let (ty, tx) = (rest / grid.tw, rest % grid.tw);
            let len = (grid.tw - tx).min(count - t);
            let run = (s, ty, tx, len, t);
            t += len;
            run
        })
    })
}

/// The zero-padded input with each row's columns split into even and odd ones: per plane,
/// `2·th + 2` rows of [even columns (tw + 1) | odd columns (tw + 1)]. Tile (ty, tx) reads
/// padded rows 2ty … 2ty + 3 and, in each, even[tx], odd[tx], even[tx + 1], odd[tx + 1]:
/// contiguous along a tile row. Made once per call (one pass over the input) instead of
/// once per tile row, which would read each input row twice.
struct SplitInput {
    data: Vec<f32>,
    rows: usize,
    half: usize,
}

impl SplitInput {
    /// From x [n, c, h, w] with sample s at x[s·stride].
    fn new((x, stride): (&[f32], usize), n: usize, c: usize, grid: Grid, pads: Pads) -> Self {
        let Grid { h, w, .. } = grid;
        assert!(stride >= c * h * w && (n == 0 || (n - 1) * stride + c * h * w <= x.len()));
        let planes = n * c;
        let (rows, half) = (2 * grid.th + 2, grid.tw + 1);
        // Every row is written below, padding rows included.
        let mut data = buffers::take(planes * rows * 2 * half);
        // Padded column j holds image column j − left; columns outside lo..hi stay zero.
        let lo = pads.left.min(2 * half);
        let hi = (w + pads.left).min(2 * half);
        data.par_chunks_mut(rows * 2 * half).enumerate().for_each_init(
            || vec![0f32; 2 * half],
            |padded, (p, split)| {
                let plane = &x[(p / c) * stride + (p % c) * h * w..][..h * w];
                for (y, out) in split.chunks_exact_mut(2 * half).enumerate() {
                    let Some(yy) = y.checked_sub(pads.top).filter(|&yy| yy < h) else {
                        out.fill(0.0); // a padding row
                        continue;
                    };
                    padded[lo..hi].copy_from_slice(&plane[yy * w..][..hi - lo]);
                    let (even, odd) = out.split_at_mut(half);
                    for (i, (e, o)) in even.iter_mut().zip(odd.iter_mut()).enumerate() {
                        *e = padded[2 * i];
                        *o = padded[2 * i + 1];
                    }
                }
            },
        );
        Self { data, rows, half }
    }

    /// Padded row `y` of plane `plane`: (even, odd) columns.
    fn row(&self, plane: usize, y: usize) -> (&[f32], &[f32]) {
        let row = &self.data[(plane * self.rows + y) * 2 * self.half..][..2 * self.half];
        row.split_at(self.half)
    }
}

/// V = Bᵀ d B for the tiles first..first + count and every input channel, into
/// v [c_in][16][count], a run of tiles along a tile row at a time.
#[inline(always)]
fn input_transform(split: &SplitInput, c_in: usize, grid: Grid, first: usize, count: usize, v: &mut [f32]) {
    let stride = count;
    for (s, ty, tx, len, t0) in row_runs(grid, first, count) {
        for c in 0..c_in {
            let plane = s * c_in + c;
            let rows: [(&[f32], &[f32]); 4] = std::array::from_fn(|r| split.row(plane, 2 * ty + r));
            let even: [&[f32]; 4] = std::array::from_fn(|r| &rows[r].0[tx..tx + len + 1]);
            let odd: [&[f32]; 4] = std::array::from_fn(|r| &rows[r].1[tx..tx + len + 1]);
            transform_run(&even, &odd, &mut v[c * XI * count + t0..], stride, len);
        }
    }
}

/// The 16 transformed values of `len` consecutive tiles, tile t from even[·][t, t + 1] and
/// odd[·][t, t + 1] of four padded rows, written to v[ξ·stride + t].
/// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]], down the columns
/// (rows of the tile) and then across them.
#[inline(always)]
fn transform_run(even: &[&[f32]; 4], odd: &[&[f32]; 4], v: &mut [f32], stride: usize, len: usize) {
    assert!(len > 0 && 15 * stride + len <= v.len());
    assert!(even.iter().chain(odd).all(|row| row.len() > len));
    // Bᵀ down the columns of four rows, at one column.
    let bt = |d: &[&[f32]; 4], t: usize| -> [f32; 4] {
        // SAFETY: t ≤ len < row length (asserted above).
        let at = |r: usize| unsafe { *d[r].get_unchecked(t) };
        [at(0) - at(2), at(1) + at(2), at(2) - at(1), at(1) - at(3)]
    };
    for t in 0..len {
        let (e0, e1, o0, o1) = (bt(even, t), bt(even, t + 1), bt(odd, t), bt(odd, t + 1));
        for r in 0..4 {
            let vals = [e0[r] - e1[r], o0[r] + e1[r], e1[r] - o0[r], o0[r] - o1[r]];
            for (k, value) in vals.into_iter().enumerate() {
                // SAFETY: (4r + k)·stride + t < 15·stride + len ≤ v.len() (asserted above).
                unsafe { *v.get_unchecked_mut((r * 4 + k) * stride + t) = value };
            }
        }
    }
}

/// Y = Aᵀ M A (+ bias, clamped) for the tiles first..first + count from m [c_out][16][count],
/// written through `out` into y [n, c_out, oh, ow] (length `out_len`, sample s at
/// `s·sample_stride`), cropped where the
/// last tile row or column overhangs. Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]. A run of tiles
/// at a time: both output rows of the run in one pass over the 16 inputs, interleaving each
/// tile's even and odd column.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_transform(
    m: &[f32],
    c_out: usize,
    grid: Grid,
    first: usize,
    count: usize,
    bias: Option<&[f32]>,
    clamp: Option<(f32, f32)>,
    (out, out_len, sample_stride): (SharedOut, usize, usize),
) {
    let Grid { oh, ow, .. } = grid;
    let stride = count;
    let mut rows = vec![0f32; 4 * grid.tw];
    for (s, ty, tx, len, t0) in row_runs(grid, first, count) {
        let cols = (2 * (tx + len)).min(ow) - 2 * tx;
        for o in 0..c_out {
            let b0 = bias.map_or(0.0, |b| b[o]);
            let q = &m[o * XI * count + t0..];
            assert!(15 * stride + len <= q.len());
            let (r0, r1) = rows.split_at_mut(2 * grid.tw);
            let (r0, r1) = (&mut r0[..2 * len], &mut r1[..2 * len]);
            for t in 0..len {
                // SAFETY: ξ·stride + t < 15·stride + len ≤ q.len() (asserted above).
                let at = |xi: usize| unsafe { *q.get_unchecked(xi * stride + t) };
                let s: [f32; 4] = std::array::from_fn(|k| at(k) + at(4 + k) + at(8 + k));
                let d: [f32; 4] = std::array::from_fn(|k| at(4 + k) - at(8 + k) - at(12 + k));
                r0[2 * t] = s[0] + s[1] + s[2] + b0;
                r0[2 * t + 1] = s[1] - s[2] - s[3] + b0;
                r1[2 * t] = d[0] + d[1] + d[2] + b0;
                r1[2 * t + 1] = d[1] - d[2] - d[3] + b0;
            }
            for (r, row) in [&mut *r0, &mut *r1].into_iter().enumerate() {
                let oy = 2 * ty + r;
                if oy >= oh {
                    break;
                }
                if let Some((lo, hi)) = clamp {
                    row.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
                }
                let at = s * sample_stride + (o * oh + oy) * ow + 2 * tx;
                assert!(at + cols <= out_len);
                // SAFETY: in bounds (checked above); these pixels belong to this run's
                // tiles, which only this chunk writes, and `row` is a separate buffer.
                unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), out.0.add(at), cols) };
            }
        }
    }
}
