//! `cargo xtask bench` for the GPU kernels: each kernel's achieved GFLOP/s or GB/s on this
//! adapter, as a share of the adapter's own measured peaks, and as a ratio to the CPU twin
//! in prefscope-core timed in the same run. Prints a table; asserts nothing.
//!
//! Sizes follow issue 3: similarity 4096×4096×1024, preference metrics at 1 M pairs,
//! per-token rewards at 1 M × 512 tokens. `BENCH_SCALE=0.25` shrinks every size for a quick
//! look. When the reference venv exists (.venv-reference), the same workloads are also timed
//! in PyTorch float32 (xtask/bench/kernels_torch.py) on torch's device: CUDA on a GPU
//! machine, else the CPU.

use std::time::Instant;

use prefscope_core::io::record::{DpoRecord, DpoTable};
use prefscope_core::preference::dpo::{LossType, Objective, PairLogps, PairwiseParams};
use prefscope_core::preference::groups::{moments, pair_terms};
use prefscope_core::preference::tokens::{segment_sums, token_rewards};
use prefscope_core::scoring::clip_score::{score_matrix, PairScore};
use prefscope_core::scoring::embedding::Embeddings;
use prefscope_core::scoring::transformer::Epilogue;
use prefscope_gpu::{bench, block_on, Gpu};

fn scale() -> f64 {
    std::env::var("BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0)
}

fn scaled(n: usize) -> usize {
    ((n as f64 * scale()) as usize).max(1)
}

/// Best of `repeats` wall-clock runs, in seconds.
fn best<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = None;
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let t = Instant::now();
        out = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out.expect("at least one run"))
}

/// xorshift values in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Seconds per workload from the PyTorch baseline, when the reference venv is there.
fn torch(scale: f64) -> Option<serde_json::Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv-reference/bin/python");
    if !python.exists() {
        println!("\n(PyTorch baseline skipped: no .venv-reference; tools/reference-venv.sh builds it)");
        return None;
    }
    let out = std::process::Command::new(python)
        .arg(root.join("xtask/bench/kernels_torch.py"))
        .args([scale.to_string(), "3".into()])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn main() {
    let start = Instant::now();
    let clock = move || start.elapsed().as_secs_f64();
    let gpu = block_on(Gpu::new(true)).expect("a GPU adapter (lavapipe: apt-get install mesa-vulkan-drivers)");
    let a = gpu.adapter();
    println!("adapter: {} — backend {}, driver {}, software: {}", a.name, a.backend, a.driver, a.software);
    let peaks = block_on(gpu.measure_peaks(3, &clock)).expect("calibration");
    println!("measured peaks: {:.1} GFLOP/s (FMA chains), {:.1} GB/s (vec4 copy)\n", peaks.gflops, peaks.gbytes_per_s);
    println!("| workload | GPU kernel | GPU end to end | CPU twin (prefscope-core) | GPU ÷ CPU speed |");
    println!("|---|---|---|---|---|");

    // Similarity: normalisation + tiled matmul with the logit epilogue.
    let (n, m, d) = (scaled(4096), scaled(4096), 1024);
    let images = Embeddings::new(d, noise(n * d, 1)).unwrap();
    let texts = Embeddings::new(d, noise(m * d, 2)).unwrap();
    let score = PairScore::Logit { logit_scale: 4.6052 };
    let flops = 2.0 * n as f64 * m as f64 * d as f64;
    let (ra, rb) = (gpu.upload_matrix(&images).unwrap(), gpu.upload_matrix(&texts).unwrap());
    let (kernel, _) = best(3, || block_on(gpu.score_matrix_on_device(&ra, &rb, score)).unwrap());
    let sim_kernel = kernel;
    let (e2e, _) = best(2, || block_on(gpu.score_matrix(&images, &texts, score)).unwrap());
    let (cpu, _) = best(1, || score_matrix(&images, &texts, score));
    let g = flops / kernel / 1e9;
    println!(
        "| similarity {n}×{m}×{d} | {:.3} s, {g:.1} GFLOP/s ({:.0}% of peak) | {:.3} s | {:.3} s, {:.2} GFLOP/s | {:.1}× |",
        kernel,
        100.0 * g / peaks.gflops,
        e2e,
        cpu,
        flops / cpu / 1e9,
        cpu / kernel
    );
    drop((ra, rb));

    // The towers' matrix product at ViT-B/32's MLP shape (16 images × 50 tokens, 768 → 3072,
    // quick_gelu fused), both kernels, resident operands.
    let (rows, k, n) = (800, 768, 3072);
    let flops = 2.0 * rows as f64 * k as f64 * n as f64;
    let x = noise(rows * k, 7);
    let w = noise(k * n, 8);
    let b = noise(n, 9);
    let mut y_cpu = vec![0f32; rows * n];
    let (cpu, _) = best(1, || {
        prefscope_core::scoring::transformer::linear(&x, rows, k, &w, n, Some(&b), Epilogue::QuickGelu, &mut y_cpu)
    });
    for direct in [false, true] {
        let g = gpu.clone().with_direct_matmul(direct);
        let (xd, wd, bd) = (g.tensor("x", &x).unwrap(), g.weight("w", &w, false).unwrap(), g.tensor("b", &b).unwrap());
        let yd = g.zeros("y", rows * n).unwrap();
        let run = || {
            let mut pass = g.pass("bench").unwrap();
            pass.linear(&xd, rows, k, &wd, n, Some(&bd), Epilogue::QuickGelu, &yd).unwrap();
            block_on(pass.finish(&[])).unwrap()
        };
        run();
        let (kernel, _) = best(3, run);
        let gf = flops / kernel / 1e9;
        println!(
            "| towers' linear {rows}×{k}·{k}×{n} ({}) | {kernel:.3} s, {gf:.1} GFLOP/s ({:.0}% of peak) | | {cpu:.3} s, {:.2} GFLOP/s (f64, 1 thread) | {:.1}× |",
            if direct { "barrier-free, vec4" } else { "workgroup-tiled" },
            100.0 * gf / peaks.gflops,
            flops / cpu / 1e9,
            cpu / kernel
        );
    }

    // Preference metrics: sigmoid DPO with TRL's metrics at 1 M pairs.
    let pairs = scaled(1 << 20);
    let col = |seed| noise(pairs, seed).into_iter().map(|v| -200.0 + 100.0 * v as f64).collect::<Vec<f64>>();
    let (pc, pr, rc, rr) = (col(3), col(4), col(5), col(6));
    let p = PairLogps {
        policy_chosen: &pc,
        policy_rejected: &pr,
        reference_chosen: &rc,
        reference_rejected: &rr,
        chosen_length: None,
        rejected_length: None,
    };
    let objective = Objective::Pairwise { losses: vec![(LossType::Sigmoid, 1.0)], params: PairwiseParams::default() };
    let (kernel, bytes) = block_on(bench::preference(&gpu, pairs, 3, &clock)).unwrap();
    let pref_kernel = kernel;
    let (e2e, _) = best(2, || block_on(gpu.evaluate_pairs(&objective, &p, 0.0)).unwrap());
    let (cpu, _) = best(3, || objective.evaluate_pairs(&p, 0.0).unwrap());
    let gbs = bytes as f64 / kernel / 1e9;
    println!(
        "| preference metrics, {pairs} pairs | {:.4} s, {gbs:.1} GB/s ({:.0}% of copy) | {:.3} s | {:.3} s | {:.1}× (kernel), {:.2}× (end to end) |",
        kernel,
        100.0 * gbs / peaks.gbytes_per_s,
        e2e,
        cpu,
        cpu / kernel,
        cpu / e2e
    );

    // Per-token rewards: 1 M sequences of 512 tokens (kernel on one binding's worth of them,
    // end to end on all of them in chunks).
    let (seqs, len) = (scaled(1 << 20), 512);
    let resident = seqs.min((gpu.binding_limit() / (len as u64 * 4)) as usize);
    let (kernel, bytes) = block_on(bench::tokens(&gpu, resident, len, 3, &clock)).unwrap();
    let tok_kernel = kernel;
    let policy = noise(seqs * len, 7);
    let reference = noise(seqs * len, 8);
    let offsets: Vec<usize> = (0..=seqs).map(|s| s * len).collect();
    let (e2e, _) = best(1, || block_on(gpu.token_rewards_f32(&policy, &reference, &offsets, 0.1)).unwrap());
    // The CPU twin on 1/8 of the sequences (its f64 columns for all of them would not fit).
    let cpu_seqs = (seqs / 8).max(1);
    let table = DpoTable::from_records(
        "bench",
        (0..cpu_seqs).map(|s| {
            let p: Vec<f64> = policy[s * len..(s + 1) * len].iter().map(|&v| v as f64).collect();
            let r: Vec<f64> = reference[s * len..(s + 1) * len].iter().map(|&v| v as f64).collect();
            DpoRecord {
                id: s.to_string(),
                policy_chosen_token_logps: Some(p),
                reference_chosen_token_logps: Some(r),
                ..Default::default()
            }
        }),
    );
    let column = &table.chosen_tokens;
    let offs = column.offsets();
    let (cpu, _) = best(2, || segment_sums(&token_rewards(column, 0.1), &offs));
    let cpu_per_token = cpu / (cpu_seqs * len) as f64;
    let gbs = bytes as f64 / kernel / 1e9;
    println!(
        "| per-token rewards, {seqs}×{len} tokens | {:.4} s for {resident}×{len}, {gbs:.1} GB/s ({:.0}% of copy) | {:.2} s | {:.2} s for {cpu_seqs}×{len} ({:.0} Mtoken/s) | {:.1}× (kernel), {:.2}× (end to end) |",
        kernel,
        100.0 * gbs / peaks.gbytes_per_s,
        e2e,
        cpu,
        1.0 / cpu_per_token / 1e6,
        cpu_per_token * (resident * len) as f64 / kernel,
        cpu_per_token * (seqs * len) as f64 / e2e
    );

    // Annotator groups: one Newton step's moments for two groups (the EM's `pairs × width²`
    // work) at Pick-a-Pic-like width, pairs resident as a fit keeps them.
    let (pairs, width, k) = (scaled(4096), 512, 2);
    let z: Vec<f64> = noise(pairs * width, 10).into_iter().map(|v| v as f64 * 0.1).collect();
    let y: Vec<f64> = noise(pairs, 11).into_iter().map(|v| if v > 0.0 { 1.0 } else { 0.0 }).collect();
    let w: Vec<f64> = noise(k * width, 12).into_iter().map(|v| v as f64).collect();
    let c = vec![1.0; pairs * k];
    let held = gpu.upload_pairs(&z, width, &y).unwrap();
    block_on(held.pair_moments(&w, k, &c)).unwrap();
    let (kernel, _) = best(3, || block_on(held.pair_moments(&w, k, &c)).unwrap());
    let (cpu, _) = best(1, || moments(&z, width, &pair_terms(&z, width, &y, &w, &c), k));
    let flops = (pairs * (width + 1) * width * k) as f64;
    println!(
        "| annotator groups' Newton moments, {pairs} pairs × {width} features, {k} groups | | {kernel:.3} s, {:.1} GFLOP/s (upload of the pair weights and read-back included) | {cpu:.3} s (f64) | {:.1}× |",
        flops / kernel / 1e9,
        cpu / kernel
    );
    drop(held);

    if let Some(t) = torch(scale()) {
        let f = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "\nPyTorch {} float32 on {} (same sizes; tokens: {} of them):",
            t["torch"], t["device"], t["token_count"]
        );
        println!("| workload | PyTorch | GPU kernel ÷ PyTorch time |");
        println!("|---|---|---|");
        println!("| similarity | {:.4} s | {:.2} |", f("similarity"), sim_kernel / f("similarity"));
        println!("| preference metrics | {:.4} s | {:.2} |", f("preference"), pref_kernel / f("preference"));
        let torch_rate = f("token_count") / f("tokens");
        let ours_rate = (resident * len) as f64 / tok_kernel;
        println!(
            "| per-token rewards | {:.0} Mtoken/s | {:.2} (rate ratio, ours ÷ torch) |",
            torch_rate / 1e6,
            ours_rate / torch_rate
        );
    }
}
