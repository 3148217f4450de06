//! The embedded demo model: an ordinary transformers CLIPModel directory (its tokenizer,
//! config and weights reproduce exactly), that scores the gallery the same on the CPU and on
//! wgpu, and that still recognises shapes drawn by another rasteriser.

use prefscope_clip::scorer::Scorer;
use prefscope_clip::weights::Checkpoint;
use prefscope_clip::{Backend, Encoder, Rgba};
use prefscope_core::scoring::embedding::dot;
use prefscope_synth::caption;
use prefscope_synth::demo::{self, model_files};
use prefscope_synth::gallery;
use prefscope_synth::scene::{Object, Scene, Shape};
use prefscope_synth::vocab::tokenizer_json;
use rand::SeedableRng;
use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Rect, Transform};

fn encoder(backend: Backend) -> Encoder {
    let mut encoder = Encoder::load(&model_files(), backend).unwrap();
    encoder.batch = 64;
    encoder
}

#[test]
fn the_committed_tokenizer_is_the_generated_one_and_every_word_is_one_token() {
    let files = model_files();
    let committed = files.read("tokenizer.json").unwrap().unwrap();
    let generated = serde_json::to_vec(&tokenizer_json(&caption::vocabulary())).unwrap();
    assert!(committed.as_ref() == generated.as_slice(), "crates/synth/demo-model/tokenizer.json is stale");
    let encoder = encoder(Backend::Cpu);
    let tokenizer = encoder.tokenizer();
    for word in caption::vocabulary() {
        assert_eq!(tokenizer.bpe(word).unwrap().len(), 1, "{word}");
    }
    // Anything else still tokenises, byte by byte at worst.
    assert!(tokenizer.bpe("a zebra, 3 times!").unwrap().len() > 5);
    // Short captions fit the context; long ones do not, so they are encoded in segments.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for _ in 0..200 {
        let scene = Scene::random(&mut rng);
        assert!(!tokenizer.encode(&caption::short(&scene).text).unwrap().truncated);
        assert!(tokenizer.encode(&caption::long(&scene).text).unwrap().truncated);
    }
}

#[test]
fn the_committed_weights_round_trip_through_the_exporter() {
    let files = model_files();
    let bytes = files.read("model.safetensors").unwrap().unwrap().to_vec();
    let encoder = encoder(Backend::Cpu);
    let checkpoint = Checkpoint::parse("model.safetensors", &bytes).unwrap();
    let device = burn::tensor::Device::flex();
    let clip = prefscope_clip::model::Clip::load(encoder.config(), &checkpoint, &device, burn::tensor::FloatDType::F32)
        .unwrap();
    let again = pollster::block_on(clip.to_hf_safetensors()).unwrap();
    assert!(again == bytes, "exporting the loaded model changed model.safetensors");
    let config: serde_json::Value = serde_json::from_slice(&files.read("config.json").unwrap().unwrap()).unwrap();
    assert_eq!(encoder.config().to_hf_config(encoder.tokenizer().end_id() - 1).unwrap(), config);
    let size = bytes.len();
    assert!(size < 8 << 20, "{size} bytes");
}

#[test]
fn the_gallery_scores_the_same_on_the_cpu_and_on_wgpu() {
    let entries = gallery::demo();
    let cpu = pollster::block_on(demo::score_gallery(&encoder(Backend::Cpu), &entries, Scorer::PickScore, 0.3, None))
        .unwrap();
    let gpu = pollster::block_on(prefscope_gpu::Gpu::new(true)).expect("a wgpu adapter (lavapipe)");
    let wgpu =
        pollster::block_on(demo::score_gallery(&encoder(Backend::Gpu(gpu)), &entries, Scorer::PickScore, 0.3, None))
            .unwrap();
    assert_eq!(cpu.len(), entries.iter().map(|e| e.candidates.len()).sum::<usize>());
    for (a, b) in cpu.iter().zip(&wgpu) {
        assert_eq!(a.id, b.id);
        for (x, y) in [(a.score, b.score), (a.relevant, b.relevant), (a.irrelevant, b.irrelevant)] {
            assert!((x - y).abs() <= 1e-3 * x.abs().max(1.0), "{}: {x} vs {y}", a.id);
        }
    }
    // Per prompt: probabilities sum to one, ranks are 1..n, long prompts went in segments.
    for (p, entry) in entries.iter().enumerate() {
        let rows: Vec<_> = cpu.iter().filter(|r| r.id.starts_with(&format!("p{p}-"))).collect();
        let total: f32 = rows.iter().map(|r| r.probability).sum();
        assert!((total - 1.0).abs() < 1e-4);
        let mut ranks: Vec<u32> = rows.iter().map(|r| r.rank).collect();
        ranks.sort_unstable();
        assert_eq!(ranks, (1..=rows.len() as u32).collect::<Vec<_>>());
        assert_eq!(rows[0].segments > 1, entry.prompt.background.is_some(), "{}", entry.prompt.text);
        for r in &rows {
            assert!((r.relevant + r.irrelevant - r.score).abs() <= 1e-3 * r.score.abs().max(1.0));
        }
    }
}

/// The same scene drawn by tiny-skia: anti-aliased edges, slightly different proportions
/// (squares and crosses thinner, the star's notches deeper) and colours a few levels off.
fn skia(scene: &Scene, size: u32) -> Rgba {
    let mut pixmap = Pixmap::new(size, size).unwrap();
    let [r, g, b] = scene.background.rgb();
    pixmap.fill(tiny_skia::Color::from_rgba8(r, g, b, 255));
    let s = size as f32;
    for o in &scene.objects {
        let (cx, cy, radius) = prefscope_synth::raster::placement(o, s);
        let path = outline(o, radius)
            .and_then(|p| p.transform(Transform::from_rotate(o.rotation.to_degrees()).post_translate(cx, cy)));
        let mut paint = Paint::default();
        let shift = |v: u8| v.saturating_add(6).saturating_sub(3);
        let [r, g, b] = o.colour.rgb();
        paint.set_color_rgba8(shift(r), shift(g), shift(b), 255);
        paint.anti_alias = true;
        if let Some(path) = path {
            pixmap.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), None);
        }
    }
    Rgba::from_raw("skia", size, size, pixmap.data().to_vec()).unwrap()
}

/// The shape's outline around the origin, outer radius `r`, pointing up.
fn outline(o: &Object, r: f32) -> Option<tiny_skia::Path> {
    let polygon = |points: Vec<(f32, f32)>| {
        let mut pb = PathBuilder::new();
        pb.move_to(points[0].0, points[0].1);
        for &(x, y) in &points[1..] {
            pb.line_to(x, y);
        }
        pb.close();
        pb.finish()
    };
    match o.shape {
        Shape::Circle => PathBuilder::from_circle(0.0, 0.0, r),
        Shape::Square => Some(PathBuilder::from_rect(Rect::from_ltrb(-0.75 * r, -0.75 * r, 0.75 * r, 0.75 * r)?)),
        Shape::Triangle => polygon(vec![(0.0, -r), (0.87 * r, 0.5 * r), (-0.87 * r, 0.5 * r)]),
        Shape::Star => polygon(
            (0..10)
                .map(|k| {
                    let a = std::f32::consts::PI * k as f32 / 5.0;
                    let radius = if k % 2 == 0 { r } else { 0.4 * r };
                    (radius * a.sin(), -radius * a.cos())
                })
                .collect(),
        ),
        Shape::Cross => {
            let (w, l) = (0.27 * r, 0.9 * r);
            polygon(vec![
                (-w, -l),
                (w, -l),
                (w, -w),
                (l, -w),
                (l, w),
                (w, w),
                (w, l),
                (-w, l),
                (-w, w),
                (-l, w),
                (-l, -w),
                (-w, -w),
            ])
        }
    }
}

#[test]
fn shapes_drawn_by_another_rasteriser_are_still_recognised() {
    let encoder = encoder(Backend::Cpu);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(77);
    let captions = 40;
    let (mut texts, mut images) = (Vec::new(), Vec::new());
    for _ in 0..captions {
        let scenes: Vec<Scene> = (0..8).map(|_| Scene::random(&mut rng)).collect();
        texts.push(caption::short(&scenes[0]).text);
        images.extend(scenes.iter().map(|s| skia(s, demo::SIZE)));
    }
    let image_embeddings = pollster::block_on(encoder.embed_images(&images, None)).unwrap();
    let text_embeddings = pollster::block_on(encoder.embed_texts(&texts)).unwrap();
    let correct = (0..captions)
        .filter(|&i| {
            let cos = |k: usize| dot(&text_embeddings[i].vector, image_embeddings.row(i * 8 + k));
            (1..8).all(|k| cos(0) > cos(k))
        })
        .count();
    let top1 = correct as f64 / captions as f64;
    println!("tiny-skia drawings: caption → image top-1 among 8 = {top1:.3}");
    assert!(top1 >= SKIA_TOP1, "top-1 {top1} on tiny-skia drawings");
}

/// The committed model reaches 0.925 here (0.92 on the generator's own, randomly degraded
/// drawings in `prefscope demo --evaluate`); the bar leaves room for a retrained model.
const SKIA_TOP1: f64 = 0.85;

fn fixture(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// transformers' CLIPModel, CLIPTokenizerFast and CLIPImageProcessor on the committed files
/// (tests/fixtures/demo/generate.py): same ids, embeddings cos ≥ 0.9999 (0.999 for images
/// resized to 64 px), the same LongAlign average.
#[test]
fn transformers_runs_the_demo_model_as_prefscope_does() {
    let expected: serde_json::Value = serde_json::from_slice(&fixture("demo/expected.json")).unwrap();
    let encoder = encoder(Backend::Cpu);
    let texts: Vec<String> = expected["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().into()).collect();
    for (text, ids) in texts.iter().zip(expected["input_ids"].as_array().unwrap()) {
        let want: Vec<u32> = ids.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(encoder.tokenizer().encode(text).unwrap().ids, want, "{text}");
    }
    let got = pollster::block_on(encoder.embed_texts(&texts)).unwrap();
    for ((text, g), want) in texts.iter().zip(&got).zip(expected["text_embeds"].as_array().unwrap()) {
        let c = cosine(&g.vector, &floats(want));
        assert!(c >= 0.9999, "{text}: cos {c}");
    }
    let long = expected["long_text"].as_str().unwrap().to_string();
    let got = pollster::block_on(encoder.embed_texts(&[long])).unwrap().remove(0);
    assert_eq!(got.segments, expected["segments"].as_array().unwrap().len());
    assert!(cosine(&got.vector, &floats(&expected["long_embedding"])) >= 0.9999);
    let images: Vec<Rgba> = expected["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let name = n.as_str().unwrap();
            Rgba::decode(name, &fixture(&format!("clip/images/{name}"))).unwrap()
        })
        .collect();
    let got = pollster::block_on(encoder.embed_images(&images, None)).unwrap();
    for (i, want) in expected["image_embeds"].as_array().unwrap().iter().enumerate() {
        let c = cosine(got.row(i), &floats(want));
        assert!(c >= 0.999, "{}: cos {c}", images[i].name);
    }
    let scale = (encoder.logit_scale() as f64).exp();
    assert!((scale - expected["logit_scale_exp"].as_f64().unwrap()).abs() < 1e-4 * scale);
}

/// The direction shipped beside the weights is the one the model computes (within f32
/// round-off across platforms); `PREFSCOPE_BLESS=1` rewrites it after a retraining.
#[test]
fn bundled_direction_is_the_models_own() {
    let encoder = encoder(Backend::Cpu);
    let reference = prefscope_clip::scorer::Reference::Prompts(demo::reference_prompts());
    for scorer in [Scorer::PickScore, Scorer::Clip, Scorer::ClipScore, Scorer::Hps] {
        let u =
            pollster::block_on(prefscope_clip::scorer::common_text_direction(&encoder, scorer, &reference)).unwrap();
        if std::env::var("PREFSCOPE_BLESS").is_ok() {
            // The compiled-in copy is the old one until the next build: write, do not compare.
            let bytes: Vec<u8> = u.iter().flat_map(|v| v.to_le_bytes()).collect();
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/demo-model/reference_direction.f32");
            std::fs::write(path, bytes).unwrap();
            return;
        }
        let shipped = demo::bundled_reference_direction();
        assert_eq!(shipped.len(), u.len(), "crates/synth/demo-model/reference_direction.f32 is stale");
        let worst = shipped.iter().zip(&u).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "{}: the shipped direction is off by {worst}: stale?", scorer.name());
    }
}

/// Rows that read their parts from a split computed once for every candidate × prompt (what
/// the page does) equal the rows a session computes pair by pair, for every preset.
#[test]
fn rows_from_the_split_matrix_equal_rows_scored_pair_by_pair() {
    let encoder = encoder(Backend::Cpu);
    let entries = gallery::demo();
    for scorer in [Scorer::PickScore, Scorer::Clip, Scorer::ClipScore, Scorer::ClipScoreOriginal, Scorer::Hps] {
        let session = pollster::block_on(demo::embed_gallery(&encoder, &entries, scorer, None)).unwrap();
        // The CPU encoder's split is prefscope-core's decompose_all over every pair.
        let split = pollster::block_on(session.split(&encoder)).unwrap();
        let once = pollster::block_on(demo::score_embedded(&encoder, &entries, &session, 0.4, Some(&split))).unwrap();
        let pairwise = pollster::block_on(demo::score_embedded(&encoder, &entries, &session, 0.4, None)).unwrap();
        assert_eq!(once.len(), pairwise.len());
        for (a, b) in once.iter().zip(&pairwise) {
            assert_eq!((&a.id, &a.prompt), (&b.id, &b.prompt));
            for (x, y, what) in [
                (a.score, b.score, "score"),
                (a.relevant, b.relevant, "relevant"),
                (a.irrelevant, b.irrelevant, "irrelevant"),
                (a.reweighted, b.reweighted, "reweighted"),
                (a.probability, b.probability, "probability"),
            ] {
                assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{} {} {what}: {x} vs {y}", scorer.name(), a.id);
            }
        }
    }
}

/// Issue 18's goal on the Pairs view's bundled set: among the pairs preference strength calls
/// `likely_wrong` (the lowest 20% of the ensemble's mean reward difference, the demo model under
/// three scorers), at least 60% are the flipped ones, and at least 60% of the flipped ones are
/// caught.
#[test]
fn strength_finds_the_flipped_labels_of_the_bundled_pairs() {
    use prefscope_core::preference::strength::{bands, pair_strength, Band, DEFAULT_BANDS};
    let encoder = encoder(Backend::Cpu);
    let pairs = prefscope_synth::flipped_pairs::bundled();
    let captions: Vec<String> = pairs.iter().map(|p| p.caption.clone()).collect();
    let labels: Vec<f32> = pairs.iter().map(|p| p.label_0).collect();
    let images: Vec<Rgba> = pairs
        .iter()
        .flat_map(|p| p.images.iter().enumerate().map(move |(k, s)| demo::rgba(&format!("{}-{k}", p.id), s).unwrap()))
        .collect();
    let scorers = prefscope_clip::pairs::STRENGTH_SCORERS;
    let d = pollster::block_on(prefscope_clip::pairs::ensemble_differences(
        &encoder, &captions, &images, &labels, &scorers,
    ))
    .unwrap();
    let means: Vec<f64> = d.iter().map(|(c, r)| pair_strength(c, r).0).collect();
    let band = bands(&means, DEFAULT_BANDS);
    let flagged: Vec<bool> = band.iter().map(|b| *b == Band::LikelyWrong).collect();
    let hits = pairs.iter().zip(&flagged).filter(|(p, f)| p.flipped && **f).count() as f64;
    let precision = hits / flagged.iter().filter(|f| **f).count() as f64;
    let recall = hits / pairs.iter().filter(|p| p.flipped).count() as f64;
    println!("likely_wrong against the flipped labels: precision {precision:.3}, recall {recall:.3}");
    assert!(precision >= 0.6 && recall >= 0.6, "precision {precision}, recall {recall}");
}
