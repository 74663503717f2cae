//! The arithmetic of the forward pass: matrix products, layer norm, GELU, softmax, and the
//! split of a product's rows across the CPU's cores.
//!
//! Everything is plain Rust shaped so that LLVM vectorises it: fixed-width lane arrays that
//! become SIMD registers, several independent accumulators so the FMA units never wait on one
//! another, and blocks of weights small enough to stay in cache while every input row passes.

use std::ops::Range;
use std::sync::Mutex;

/// Lanes of one accumulator: 8 f32 are one AVX register.
const LANES: usize = 8;
/// Rows of the left operand multiplied together (each lane group of theirs loaded once).
pub const TILE_ROWS: usize = 2;
/// Rows of the right operand multiplied together.
pub const TILE_COLS: usize = 4;
/// Bytes of the right operand (weights) kept hot in cache while a block of left rows passes
/// over them, and bytes of that block of left rows: together a part of one core's L2.
const RIGHT_BLOCK_BYTES: usize = 96 * 1024;
const LEFT_BLOCK_BYTES: usize = 192 * 1024;

/// `a * b + c`, fused where the CPU has FMA (a release build with `-C target-cpu=native`);
/// elsewhere the unfused form, since a software fused multiply-add is many times slower.
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    if cfg!(target_feature = "fma") {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// A matrix of `rows` rows of length `k`, laid out for the product below: rows in tiles of W,
/// each tile stored lane group by lane group (`[group][row in tile][lane]`), zero-padded to
/// whole tiles and whole groups. The product then reads both operands front to back, and its
/// inner loop has only fixed-size arrays, which LLVM keeps in vector registers.
pub struct Packed<const W: usize> {
    groups: Vec<[[f32; LANES]; W]>,
    rows: usize,
    groups_per_tile: usize,
}

impl<const W: usize> Packed<W> {
    /// Packs the matrix whose element (row, column) is `get(row, column)`.
    pub fn new(rows: usize, k: usize, get: impl Fn(usize, usize) -> f32) -> Self {
        let groups_per_tile = k.div_ceil(LANES);
        let tiles = rows.div_ceil(W);
        let mut groups = vec![[[0f32; LANES]; W]; tiles * groups_per_tile];
        for (index, group) in groups.iter_mut().enumerate() {
            let (tile, g) = (index / groups_per_tile, index % groups_per_tile);
            for (w, lanes) in group.iter_mut().enumerate() {
                let row = tile * W + w;
                if row >= rows {
                    break;
                }
                for (lane, value) in lanes.iter_mut().enumerate() {
                    let column = g * LANES + lane;
                    if column < k {
                        *value = get(row, column);
                    }
                }
            }
        }
        Self {
            groups,
            rows,
            groups_per_tile,
        }
    }

    /// A row-major [rows, k] matrix, packed.
    pub fn from_rows(values: &[f32], k: usize) -> Self {
        Self::new(values.len() / k, k, |row, column| values[row * k + column])
    }

    fn tiles(&self) -> std::slice::ChunksExact<'_, [[f32; LANES]; W]> {
        self.groups.chunks_exact(self.groups_per_tile.max(1))
    }
}

/// The lane-wise partial dot products of one tile of R rows with one tile of C rows, summed
/// across lanes by the caller.
///
/// Written for LLVM's vectoriser: R·C accumulators of one vector register each, a loop whose
/// body is R·C vector FMAs. Never inlined, and the lanes summed outside: inlined, or with the
/// horizontal sums in view, LLVM was seen to vectorise across the accumulators instead,
/// shuffling every value, at a third of the speed.
#[inline(never)]
fn tile<const R: usize, const C: usize>(
    a: &[[[f32; LANES]; R]],
    b: &[[[f32; LANES]; C]],
) -> [[[f32; LANES]; C]; R] {
    let mut acc = [[[0f32; LANES]; C]; R];
    // `while` rather than `for … in 0..N`: optimised they are the same, and unoptimised (the
    // tests' debug build) they make no iterator call per multiply-add, which triples its speed.
    for (x, w) in a.iter().zip(b) {
        let mut r = 0;
        while r < R {
            let mut c = 0;
            while c < C {
                let mut lane = 0;
                while lane < LANES {
                    acc[r][c][lane] = fma(x[r][lane], w[c][lane], acc[r][c][lane]);
                    lane += 1;
                }
                c += 1;
            }
            r += 1;
        }
    }
    acc
}

/// The sum of one accumulator's lanes, halving: three vector adds rather than seven in a chain.
#[inline(always)]
fn sum_lanes(lanes: &[f32; LANES]) -> f32 {
    let quarters: [f32; 4] = std::array::from_fn(|i| lanes[i] + lanes[i + 4]);
    (quarters[0] + quarters[2]) + (quarters[1] + quarters[3])
}

/// `out[i][j] = dot(a[i], b[j]) (+ bias[j])`, `out` being row-major [a.rows, b.rows]. With `b`
/// a PyTorch Linear weight ([outputs, inputs]) this is the layer's output.
pub fn matmul(a: &Packed<TILE_ROWS>, b: &Packed<TILE_COLS>, bias: Option<&[f32]>, out: &mut [f32]) {
    let (m, n) = (a.rows, b.rows);
    debug_assert_eq!(a.groups_per_tile, b.groups_per_tile);
    debug_assert_eq!(out.len(), m * n);
    let tile_bytes = |rows: usize| a.groups_per_tile.max(1) * rows * LANES * 4;
    let a_tiles: Vec<&[[[f32; LANES]; TILE_ROWS]]> = a.tiles().collect();
    let b_tiles: Vec<&[[[f32; LANES]; TILE_COLS]]> = b.tiles().collect();
    let a_block = (LEFT_BLOCK_BYTES / tile_bytes(TILE_ROWS)).max(1);
    let b_block = (RIGHT_BLOCK_BYTES / tile_bytes(TILE_COLS)).max(1);
    for (a_block_index, a_tiles) in a_tiles.chunks(a_block).enumerate() {
        for (b_block_index, b_tiles) in b_tiles.chunks(b_block).enumerate() {
            for (a_offset, a_tile) in a_tiles.iter().enumerate() {
                let i0 = (a_block_index * a_block + a_offset) * TILE_ROWS;
                for (b_offset, b_tile) in b_tiles.iter().enumerate() {
                    let partial = tile(a_tile, b_tile);
                    let j0 = (b_block_index * b_block + b_offset) * TILE_COLS;
                    let columns = TILE_COLS.min(n - j0);
                    for (i, row) in (i0..m).zip(&partial) {
                        for (value, lanes) in out[i * n + j0..i * n + j0 + columns].iter_mut().zip(row) {
                            *value = sum_lanes(lanes);
                        }
                    }
                }
            }
        }
    }
    if let Some(bias) = bias {
        for row in out.chunks_exact_mut(n) {
            for (value, b) in row.iter_mut().zip(bias) {
                *value += b;
            }
        }
    }
}

/// Multiply-adds below which a part of the work is not worth a thread of its own: starting
/// one costs tens of microseconds.
const MIN_COST_PER_THREAD: usize = 200_000;
/// Parts per thread that work is cut into. The threads take parts as they finish them rather
/// than one fixed share each, so that a core busy with another process slows the pass down by
/// its share of the parts, not by making the other core wait for its half.
const PARTS_PER_THREAD: usize = 4;

/// Runs `work` on every item of `items`, on up to `threads` threads (the caller's among them),
/// each thread taking the next item when it is done with one.
fn share<T: Send>(threads: usize, items: impl Iterator<Item = T> + Send, work: impl Fn(T) + Sync) {
    let queue = Mutex::new(items);
    let next = || {
        queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .next()
    };
    let drain = || {
        while let Some(item) = next() {
            work(item);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(drain);
        }
        drain();
    });
}

/// Runs `work(rows, out_rows)` over `rows` cut into parts shared among threads, where each row
/// owns `row_len` values of `out`. Small jobs run on the calling thread alone.
pub fn split_rows<F>(
    threads: usize,
    rows: usize,
    row_len: usize,
    cost_per_row: usize,
    out: &mut [f32],
    work: F,
) where
    F: Fn(Range<usize>, &mut [f32]) + Sync,
{
    let threads = threads
        .min(rows * cost_per_row / MIN_COST_PER_THREAD)
        .clamp(1, rows.max(1));
    if threads == 1 {
        work(0..rows, out);
        return;
    }
    // Parts are whole tiles, so only the last part has a ragged end, and at most 64 rows, so
    // that a part's left operand stays in cache while the weights pass.
    let part_rows = rows
        .div_ceil(threads * PARTS_PER_THREAD)
        .next_multiple_of(TILE_ROWS)
        .min(64);
    let parts = out
        .chunks_mut(part_rows * row_len)
        .enumerate()
        .map(|(index, part)| (index * part_rows..((index + 1) * part_rows).min(rows), part));
    share(threads, parts, |(range, part)| work(range, part));
}

/// Runs `work(job, out)` for every job, where job `i` owns the next `sizes[i]` values of `out`,
/// the jobs shared among threads. `costs` (multiply-adds) decide whether threads are worth it.
pub fn split_jobs<J: Sync, F>(
    threads: usize,
    jobs: &[J],
    sizes: &[usize],
    costs: &[usize],
    out: &mut [f32],
    work: F,
) where
    F: Fn(&J, &mut [f32]) + Sync,
{
    let total: usize = costs.iter().sum();
    let threads = threads
        .min(total / MIN_COST_PER_THREAD)
        .clamp(1, jobs.len().max(1));
    let mut rest = out;
    let slots = sizes.iter().map(|&size| {
        let (slot, tail) = std::mem::take(&mut rest).split_at_mut(size);
        rest = tail;
        slot
    });
    if threads == 1 {
        for (job, slot) in jobs.iter().zip(slots) {
            work(job, slot);
        }
        return;
    }
    share(threads, jobs.iter().zip(slots), |(job, slot)| work(job, slot));
}

/// Layer normalisation of each row of `x` in place (biased variance, as PyTorch).
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    for row in x.chunks_exact_mut(width) {
        let mean = row.iter().sum::<f32>() / width as f32;
        let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        let scale = 1.0 / (variance + eps).sqrt();
        for ((value, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *value = fma((*value - mean) * scale, *g, *b);
        }
    }
}

/// The error function by Abramowitz and Stegun's 7.1.26 (exact to 1.5e-7), which in f32 is
/// within 7e-7 of it: GELU then stays within 4e-7 of its exact value, at the cost of one `exp`.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let magnitude = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -magnitude } else { magnitude }
}

/// GELU in its exact form, `x · Φ(x)` with the erf, as BERT's "gelu" activation.
pub fn gelu(x: &mut [f32]) {
    for value in x {
        *value = 0.5 * *value * (1.0 + erf(*value * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Softmax of each row of `x` (width `width`) in place.
pub fn softmax_rows(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for value in row.iter_mut() {
            *value = (*value - max).exp();
            sum += *value;
        }
        let inverse = 1.0 / sum;
        for value in row.iter_mut() {
            *value *= inverse;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `matmul` of two row-major matrices [m, k] and [n, k].
    fn matmul_transposed(a: &[f32], b: &[f32], k: usize, out: &mut [f32]) {
        matmul(&Packed::from_rows(a, k), &Packed::from_rows(b, k), None, out);
    }

    fn naive(a: &[f32], b: &[f32], k: usize) -> Vec<f32> {
        let (m, n) = (a.len() / k, b.len() / k);
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum();
            }
        }
        out
    }

    #[test]
    fn the_tiled_product_equals_the_naive_one_for_ragged_shapes() {
        for (m, n, k) in [(1, 1, 1), (5, 3, 13), (9, 131, 40), (4, 2, 8), (7, 65, 384)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let b: Vec<f32> = (0..n * k).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect();
            let mut out = vec![0.0; m * n];
            matmul_transposed(&a, &b, k, &mut out);
            for (got, want) in out.iter().zip(naive(&a, &b, k)) {
                assert!((got - want).abs() < 1e-3, "{m}x{n}x{k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn rows_split_across_threads_cover_every_row_once() {
        let mut out = vec![0.0; 37 * 3];
        split_rows(2, 37, 3, 1_000_000, &mut out, |rows, part| {
            for (row, values) in rows.zip(part.chunks_exact_mut(3)) {
                values.fill(row as f32 + 1.0);
            }
        });
        for (row, values) in out.chunks_exact(3).enumerate() {
            assert_eq!(values, [row as f32 + 1.0; 3]);
        }
    }

    #[test]
    fn jobs_split_across_threads_each_fill_their_own_slot() {
        let sizes = [3, 1, 4, 1, 5, 9, 2, 6];
        let jobs: Vec<usize> = (0..sizes.len()).collect();
        let costs = sizes.map(|size| size * 1_000_000);
        let mut out = vec![0.0; sizes.iter().sum()];
        split_jobs(2, &jobs, &sizes, &costs, &mut out, |&job, slot| {
            slot.fill(job as f32)
        });
        let expected: Vec<f32> = jobs
            .iter()
            .flat_map(|&job| vec![job as f32; sizes[job]])
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn erf_and_gelu_match_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 7e-7, "erf({x})");
        }
        let mut values = [-1.0, 0.0, 1.0, 3.0];
        gelu(&mut values);
        for (got, want) in values.iter().zip([-0.158_655_25, 0.0, 0.841_344_7, 2.995_950_5]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
