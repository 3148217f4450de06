//! Tower throughput and time to first embedding, beside PyTorch transformers in the same run.
//!
//! The model has exactly openai/clip-vit-base-patch32's shapes with random weights (built here
//! as a safetensors file, so nothing is downloaded). Each backend is timed cold (load, first
//! embedding: kernel compilation included), after `Encoder::warm_up`, and at throughput (best
//! of REPEATS batches). PyTorch eager
//! fp32 (xtask/bench/clip_torch.py) runs on its best device when .venv-reference exists.
//!
//! `cargo xtask bench` runs it; `PREFSCOPE_BENCH_BATCH` (default 64) sets the batch. On a GPU
//! adapter it then scores at PickScore's and HPS v2's size (ViT-H/14, f16 weights): load, the
//! first score, and warm scoring through a scoring `Session` (`PREFSCOPE_BENCH_VITH=0` skips it).

use std::time::Instant;

use prefscope_clip::export::{hf_shapes, safetensors_f32};
use prefscope_clip::scorer::{common_text_direction, Item, Reference, Scorer};
use prefscope_clip::session::{Direction, Session};
use prefscope_clip::{Backend, ClipConfig, Dtype, DtypeChoice, Encoder, ModelFiles, Rgba};
use prefscope_gpu::Gpu;

const REPEATS: usize = 2;

/// openai/clip-vit-base-patch32's config.json.
const CONFIG: &str = prefscope_clip::export::VIT_B32_CONFIG;

/// Deterministic N(0, σ²)-ish values (sum of uniforms): timing does not care about the law.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        let mut s = 0.0;
        for _ in 0..4 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            s += (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        s
    }
}

/// A checkpoint with `config`'s shapes and random weights, in transformers' layout.
fn model_files(config_json: &str) -> ModelFiles {
    let mut rng = Rng(0x5eed);
    let config = ClipConfig::from_huggingface(config_json.as_bytes(), None).expect("config");
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = hf_shapes(&config)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let ones = name.contains("norm") && name.ends_with("weight");
            let values = (0..n).map(|_| if ones { 1.0 } else { 0.05 * rng.next() }).collect();
            (name, shape, values)
        })
        .collect();
    let mut files = ModelFiles::new();
    files.insert("config.json", config_json.as_bytes().to_vec());
    files.insert("model.safetensors", safetensors_f32(&tensors).expect("serialize"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip/tokenizer.json");
    files.insert("tokenizer.json", std::fs::read(root).expect("tests/fixtures/clip/tokenizer.json"));
    files
}

fn inputs(batch: usize) -> (Vec<String>, Vec<Rgba>) {
    let texts =
        (0..batch).map(|i| format!("a photo of {i} small shapes on a plain background, seen from above")).collect();
    let images = (0..batch)
        .map(|i| {
            let data = (0..224 * 224 * 4).map(|k| ((k * 31 + i * 7) % 251) as u8).collect();
            Rgba::from_raw(&format!("img{i}"), 224, 224, data).expect("image")
        })
        .collect();
    (texts, images)
}

struct Timing {
    load: f64,
    /// First text and first image right after loading: kernel compilation included.
    cold: f64,
    /// The same after [`Encoder::warm_up`] has run.
    warm: f64,
    text_per_s: f64,
    image_per_s: f64,
}

fn time(files: &ModelFiles, backend: Backend, batch: usize, dtype: DtypeChoice) -> Timing {
    let (texts, images) = inputs(batch);
    let t = Instant::now();
    let mut encoder = Encoder::load_with(files, backend, dtype).expect("load");
    encoder.batch = batch;
    let load = t.elapsed().as_secs_f64();
    let first = || {
        let t = Instant::now();
        pollster::block_on(encoder.embed_texts(&texts[..1])).expect("text");
        pollster::block_on(encoder.embed_images(&images[..1], None)).expect("image");
        t.elapsed().as_secs_f64()
    };
    let cold = first();
    pollster::block_on(encoder.warm_up()).expect("warm-up");
    let warm = first();
    let best = |f: &dyn Fn()| {
        f(); // the batch shape's own first run
        (0..REPEATS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let text_s = best(&|| {
        pollster::block_on(encoder.embed_texts(&texts)).expect("texts");
    });
    let image_s = best(&|| {
        pollster::block_on(encoder.embed_images(&images, None)).expect("images");
    });
    Timing { load, cold, warm, text_per_s: batch as f64 / text_s, image_per_s: batch as f64 / image_s }
}

/// `{"device": …, "text_per_s": …, "image_per_s": …}` from the PyTorch script, if the venv exists.
fn torch(batch: usize) -> Option<serde_json::Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv-reference/bin/python");
    if !python.exists() {
        println!("(PyTorch baseline skipped: no .venv-reference; tools/reference-venv.sh builds it)");
        return None;
    }
    let out = std::process::Command::new(python)
        .arg(root.join("xtask/bench/clip_torch.py"))
        .args([batch.to_string(), REPEATS.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        println!("(PyTorch baseline failed: {})", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn main() {
    let batch: usize = std::env::var("PREFSCOPE_BENCH_BATCH").ok().and_then(|b| b.parse().ok()).unwrap_or(64);
    let files = model_files(CONFIG);
    println!("CLIP ViT-B/32 shapes, random weights, fp32, batch {batch}");
    let mut rows = Vec::new();
    match pollster::block_on(Gpu::new(true)) {
        Ok(gpu) => {
            let name = format!("prefscope kernels ({})", gpu.adapter());
            rows.push((name.clone(), time(&files, Backend::Gpu(gpu.clone()), batch, DtypeChoice::Exactly(Dtype::F32))));
            // What a half-precision checkpoint runs in on this adapter (f16 weights).
            if gpu.has_shader_f16() {
                rows.push((
                    format!("{name} f16"),
                    time(&files, Backend::Gpu(gpu.clone()), batch, DtypeChoice::Exactly(Dtype::F16)),
                ));
            }
            // The towers as burn modules on burn-wgpu, on the same device: the comparison row.
            #[cfg(feature = "burn-wgpu")]
            rows.push((
                format!("burn-wgpu ({})", gpu.adapter()),
                time(&files, Backend::BurnWgpu(gpu), batch, DtypeChoice::Exactly(Dtype::F32)),
            ));
            #[cfg(not(feature = "burn-wgpu"))]
            println!("(the burn-wgpu row needs --features burn-wgpu; `cargo xtask bench` sets it)");
        }
        Err(e) => println!("(GPU rows skipped: {e})"),
    }
    let vit_h = std::env::var("PREFSCOPE_BENCH_VITH").map_or(true, |v| v != "0");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for dtype in [Dtype::F32, Dtype::F16, Dtype::Q8] {
        let what = if dtype == Dtype::F32 { String::new() } else { format!(" {}", dtype.name()) };
        rows.push((
            format!("prefscope cpu kernels{what} ({threads} threads)"),
            time(&files, Backend::Cpu, batch, DtypeChoice::Exactly(dtype)),
        ));
    }
    rows.push((
        "burn-flex (CPU, 1 thread)".to_string(),
        time(&files, Backend::BurnFlex, batch, DtypeChoice::Exactly(Dtype::F32)),
    ));
    let baseline = torch(batch);
    println!(
        "\n{:<44} {:>8} {:>12} {:>12} {:>10} {:>10}",
        "backend", "load s", "cold 1st s", "warm 1st s", "texts/s", "images/s"
    );
    for (name, t) in &rows {
        println!(
            "{name:<44} {:>8.2} {:>12.2} {:>12.3} {:>10.1} {:>10.1}",
            t.load, t.cold, t.warm, t.text_per_s, t.image_per_s
        );
    }
    println!("(1st: one text and one image, embedded one after the other)");
    let kernels = rows.iter().find(|(n, _)| n.starts_with("prefscope kernels"));
    let burn = rows.iter().find(|(n, _)| n.starts_with("burn-wgpu"));
    if let (Some((_, k)), Some((_, b))) = (kernels, burn) {
        println!(
            "\nprefscope kernels vs burn-wgpu, same adapter (higher is better; goal ≥ 1.5): texts {:.2}×, images {:.2}×",
            k.text_per_s / b.text_per_s,
            k.image_per_s / b.image_per_s
        );
    }
    let cpu = rows.iter().find(|(n, _)| n.starts_with("prefscope cpu"));
    let flex = rows.iter().find(|(n, _)| n.starts_with("burn-flex"));
    if let (Some((_, c)), Some((_, f))) = (cpu, flex) {
        println!(
            "prefscope cpu kernels vs burn-flex (higher is better): texts {:.2}×, images {:.2}×",
            c.text_per_s / f.text_per_s,
            c.image_per_s / f.image_per_s
        );
    }
    if let Some(b) = baseline {
        let (tps, ips) = (b["text_per_s"].as_f64().unwrap_or(f64::NAN), b["image_per_s"].as_f64().unwrap_or(f64::NAN));
        println!(
            "{:<44} {:>8} {:>11} {:>12} {tps:>10.1} {ips:>10.1}",
            format!("PyTorch eager fp32 ({})", b["device"]),
            "",
            "",
            ""
        );
        println!("\ntime relative to PyTorch fp32 (lower is better; goal ≤ 1.25 on the same GPU, fp32 rows)");
        for (name, t) in &rows {
            println!("{name:<44} texts {:>6.2}×   images {:>6.2}×", tps / t.text_per_s, ips / t.image_per_s);
        }
    }
    if vit_h {
        match pollster::block_on(Gpu::new(true)) {
            Ok(gpu) => score_vit_h(gpu),
            Err(e) => println!("(ViT-H/14 scoring skipped: {e})"),
        }
    }
}

/// Scoring at PickScore's size on the device: ViT-H/14 towers with f16 weights, PickScore's
/// preset, `SCORED` images against one prompt each plus the reference prompts' direction.
fn score_vit_h(gpu: Gpu) {
    const SCORED: usize = 4;
    println!(
        "\nViT-H/14 shapes (PickScore, HPS v2), random weights stored f32, run with f16 weights on {}",
        gpu.adapter()
    );
    let t = Instant::now();
    let files = model_files(prefscope_clip::export::VIT_H14_CONFIG);
    let bytes = files.read("model.safetensors").ok().flatten().map_or(0, |b| b.len());
    println!("checkpoint built in {:.1} s ({bytes} bytes)", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let encoder =
        Encoder::load_with(&files, Backend::Gpu(gpu), DtypeChoice::Exactly(Dtype::F16)).expect("ViT-H/14 load");
    drop(files);
    let load = t.elapsed().as_secs_f64();
    let (texts, images) = inputs(SCORED);
    let scorer = Scorer::PickScore;
    let reference = Reference::Prompts(vec!["a photo".into(), "an image of something".into()]);
    let run = |n: usize| {
        let t = Instant::now();
        let u = pollster::block_on(common_text_direction(&encoder, scorer, &reference)).expect("direction");
        let session =
            pollster::block_on(Session::embed(&encoder, scorer, &images[..n], &texts[..n], Direction::Given(u)))
                .expect("session");
        let names: Vec<String> = (0..n).map(|i| format!("img{i}")).collect();
        let items: Vec<Item> = (0..n)
            .map(|i| Item { id: i.to_string(), group: None, prompt: &texts[i], image: i, image_name: &names[i] })
            .collect();
        let rows = pollster::block_on(session.score(&encoder, &items, 0.0, None)).expect("score");
        assert_eq!(rows.len(), n);
        t.elapsed().as_secs_f64()
    };
    let first = run(1);
    let warm = run(SCORED);
    println!(
        "{:<44} {:>8} {:>14} {:>22}",
        "ViT-H/14 on prefscope kernels", "load s", "first score s", "scored rows/s (warm)"
    );
    println!("{:<44} {load:>8.1} {first:>14.1} {:>22.2}", "", SCORED as f64 / warm);
    println!("(a row: one image, one prompt; each run also embeds {} reference prompts)", reference.prompts().len());
}
