//! Whisper-tiny's cross-attention over the encoder output for one decoding step (4 layers,
//! 6 heads, 1500 rows of 384): `rows_attention::attend_rows`, one pass over the rows, against
//! the two GEMMs it replaced (scores from a transposed copy, then weighted rows), measured in
//! the same run, interleaved. Batches at or above the thread count run one sequence per task;
//! smaller ones split each sequence's rows (or GEMMs) between the threads, as the plugin does.
//!
//!     cargo bench -p karma-cpu-kernels --bench rows_attention [-- BATCH...]   (default 1 8)

use std::hint::black_box;
use std::time::Instant;

use karma_cpu_kernels::matmul::{strided_gemm, Parallelism};
use karma_cpu_kernels::{rows_attention, vector_math};
use rayon::prelude::*;

const KEYS: usize = 1500;
const WIDTH: usize = 384;
const QUERIES: usize = 6;
const LAYERS: usize = 4;
const STEPS: usize = 20;
const ROUNDS: usize = 7;

struct Sequence {
    rows: Vec<f32>,
    /// The transposed copy the two-GEMM form reads for its scores.
    columns: Vec<f32>,
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len).map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 2000.0 - 0.5).collect()
}

fn two_gemms(queries: &[f32], sequence: &Sequence, scale: f32, parallelism: Parallelism) -> Vec<f32> {
    let (mut scores, mut mixed) = (vec![0f32; QUERIES * KEYS], vec![0f32; QUERIES * WIDTH]);
    // SAFETY: scores^T (keys x queries) = E (keys x width, read column-major from `columns`)
    // times queries^T, then mixed^T (width x queries) = E^T times weights^T: all in bounds.
    unsafe {
        strided_gemm(
            (KEYS, QUERIES, WIDTH),
            (scores.as_mut_ptr(), 1, KEYS),
            false,
            (sequence.columns.as_ptr(), 1, KEYS),
            (queries.as_ptr(), 1, WIDTH),
            parallelism,
        )
    }
    let sums: Vec<f32> =
        scores.chunks_exact_mut(KEYS).map(|row| vector_math::softmax_unnormalised(row, scale)).collect();
    unsafe {
        strided_gemm(
            (WIDTH, QUERIES, KEYS),
            (mixed.as_mut_ptr(), 1, WIDTH),
            false,
            (sequence.rows.as_ptr(), 1, WIDTH),
            (scores.as_ptr(), 1, KEYS),
            parallelism,
        )
    }
    for (row, sum) in mixed.chunks_exact_mut(WIDTH).zip(&sums) {
        row.iter_mut().for_each(|value| *value /= sum);
    }
    mixed
}

fn one_pass(queries: &[f32], sequence: &Sequence, scale: f32, threads: Option<usize>) -> Vec<f32> {
    let partial = match threads {
        Some(threads) => rows_attention::attend_rows_split(queries, &sequence.rows, WIDTH, scale, threads),
        None => rows_attention::attend_rows(queries, &sequence.rows, WIDTH, scale),
    };
    let mut out = vec![0f32; QUERIES * WIDTH];
    partial.finish(&mut out);
    out
}

/// Milliseconds per decoding step (all layers, all sequences).
fn step_time(batch: &[Sequence], queries: &[f32], one_pass_form: bool) -> f64 {
    let threads = rayon::current_num_threads();
    let scale = (WIDTH as f32 / QUERIES as f32).powf(-0.5);
    let attend = |sequence: &Sequence, shared: bool| {
        if one_pass_form {
            one_pass(queries, sequence, scale, shared.then_some(threads))
        } else {
            let parallelism = if shared { Parallelism::Rayon(threads) } else { Parallelism::None };
            two_gemms(queries, sequence, scale, parallelism)
        }
    };
    let started = Instant::now();
    for _ in 0..STEPS * LAYERS {
        if batch.len() >= threads {
            batch.par_iter().for_each(|sequence| {
                black_box(attend(sequence, false));
            });
        } else {
            batch.iter().for_each(|sequence| {
                black_box(attend(sequence, true));
            });
        }
    }
    started.elapsed().as_secs_f64() * 1000.0 / STEPS as f64
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let batches: Vec<usize> = std::env::args().skip(1).filter_map(|arg| arg.parse().ok()).collect();
    let batches = if batches.is_empty() { vec![1, 8] } else { batches };
    let queries = values(QUERIES * WIDTH, 99);
    // The two forms agree before anything is timed.
    let check = Sequence { rows: values(KEYS * WIDTH, 7), columns: Vec::new() };
    let check = Sequence { columns: transpose(&check.rows), ..check };
    let scale = (WIDTH as f32 / QUERIES as f32).powf(-0.5);
    let (a, b) =
        (two_gemms(&queries, &check, scale, Parallelism::None), one_pass(&queries, &check, scale, None));
    let worst = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "the forms differ by {worst}");
    println!("cross-attention of {QUERIES} queries over {KEYS}x{WIDTH} rows, {LAYERS} layers a step, {} threads, {ROUNDS} interleaved rounds", rayon::current_num_threads());
    for batch in batches {
        let sequences: Vec<Sequence> = (0..batch)
            .map(|index| {
                let rows = values(KEYS * WIDTH, index as u32);
                Sequence { columns: transpose(&rows), rows }
            })
            .collect();
        let (mut gemms, mut passes) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            gemms.push(step_time(&sequences, &queries, false));
            passes.push(step_time(&sequences, &queries, true));
        }
        let (gemms, passes) = (median(gemms), median(passes));
        println!(
            "batch {batch}: two GEMMs {gemms:.2} ms a step, one pass {passes:.2} ms; one pass {:.2}x",
            gemms / passes
        );
    }
}

fn transpose(rows: &[f32]) -> Vec<f32> {
    let mut columns = vec![0f32; rows.len()];
    for (key, row) in rows.chunks_exact(WIDTH).enumerate() {
        for (column, value) in row.iter().enumerate() {
            columns[column * KEYS + key] = *value;
        }
    }
    columns
}
