//! The int8 product's speed on each instruction set this CPU has, against the f32 product the
//! CPU towers otherwise run, on B/32's shapes: `cargo bench -p prefscope-clip --bench qgemm`
//! (`cargo xtask bench` runs it). One thread for both (`RAYON_NUM_THREADS=1` is set here
//! before gemm's pool starts), best of several runs.

use std::time::Instant;

use prefscope_clip::cpu_kernels::linear;
use prefscope_clip::cpu_matrix::{Matrix, Scratch};
use prefscope_clip::qgemm::{product, Isa, PackedQ8, QuantRows};
use prefscope_clip::Dtype;
use prefscope_core::scoring::transformer::Epilogue;

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
        .collect()
}

/// Best wall time of `f` over a few runs after one warm-up, in seconds.
fn best(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    println!(
        "int8 product per instruction set (exact i32 sums) against f32 gemm, one thread; GOP/s (2·m·n·k per product);"
    );
    println!(
        "the whole q8 product adds quantizing the activations and dequantizing the sums, on the best instruction set"
    );
    for (m, k, n, what) in [
        (400, 768, 3072, "B/32 MLP up-projection, 8 images"),
        (50, 768, 3072, "B/32 MLP up-projection, 1 image"),
        (400, 3072, 768, "B/32 MLP down-projection, 8 images"),
        (616, 512, 2048, "B/32 text MLP, 8 texts"),
    ] {
        let (x, w) = (values(m * k, 1), values(k * n, 2));
        let ops = 2.0 * (m * n * k) as f64 / 1e9;
        let mut y = vec![0f32; m * n];
        let f32_s = best(|| linear(&x, m, k, &w, n, None, Epilogue::None, &mut y));
        let packed = PackedQ8::quantize(&w, k, n, false);
        let mut q = QuantRows::default();
        let quantize_s = best(|| q.quantize(&x, m, k));
        let mut line = format!("{what} ({m}×{k}·{k}×{n}): f32 {:.1}", ops / f32_s);
        for &isa in Isa::available() {
            let mut sink = 0i32;
            let s = best(|| product(&q, &packed, isa, 0..m, |_, _, acc| sink = sink.wrapping_add(acc[0][0])));
            std::hint::black_box(sink);
            line += &format!(", {} {:.1}", isa.name(), ops / s);
        }
        let mut scratch = Scratch::default();
        let mut whole = |dtype| {
            let m8 = Matrix::weights(w.clone(), [k, n], dtype);
            best(|| m8.linear(&x, m, k, n, None, Epilogue::None, &mut y, &mut scratch))
        };
        let (q8_s, f16_s) = (whole(Dtype::Q8), whole(Dtype::F16));
        println!(
            "{line}; quantizing the activations {:.2} ms; whole q8 product {:.1}, f16 {:.1}",
            quantize_s * 1e3,
            ops / q8_s,
            ops / f16_s
        );
    }
}
