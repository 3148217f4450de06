//! The kernels inside headless Chromium on WebGPU (SwiftShader in CI), against core: a
//! representative subset of the native comparisons, kept tiny because the software adapter
//! is slow. Run by `cargo xtask test` through wasm-bindgen-test-runner and chromedriver.
#![cfg(target_arch = "wasm32")]

#[path = "kernels/annotators.rs"]
mod annotators;
#[path = "kernels/common.rs"]
mod common;
#[path = "kernels/transformer.rs"]
mod transformer;

use common::{assert_close, Rng};
use prefscope_core::histogram::histogram;
use prefscope_core::preference::dpo::{LossType, Objective, PairLogps, PairwiseParams};
use prefscope_core::preference::tokens::segment_sums;
use prefscope_core::scoring::clip_score::{grouped_ranks, grouped_softmax, score_matrix, PairScore};
use prefscope_core::scoring::longalign::{common_direction, decompose_all};
use prefscope_core::scoring::preprocess::{preprocess, Preset};
use prefscope_gpu::Gpu;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

async fn gpu() -> Gpu {
    Gpu::new(true).await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)")
}

#[wasm_bindgen_test]
async fn adapter_is_webgpu_with_its_own_limits() {
    let g = gpu().await;
    assert_eq!(g.adapter().backend, "webgpu");
    let limits = g.adapter_limits();
    assert_eq!(g.device().limits().max_storage_buffer_binding_size, limits.max_storage_buffer_binding_size);
}

#[wasm_bindgen_test]
async fn similarity_and_softmax_match_core() {
    let g = gpu().await;
    let mut rng = Rng::new(21);
    let (images, texts) = (rng.embeddings(19, 33), rng.embeddings(7, 33));
    for score in [PairScore::Cosine, PairScore::Logit { logit_scale: 4.6052 }, PairScore::ClipScoreOriginal] {
        let got = g.score_matrix(&images, &texts, score).await.unwrap();
        let scale = score.affine().0 as f64;
        assert_close("similarity", &got, &score_matrix(&images, &texts, score), 2e-6 * scale, 0.0);
    }
    let chunked = g.clone().with_binding_limit(512);
    let got = chunked.score_matrix(&images, &texts, PairScore::Cosine).await.unwrap();
    assert_close("chunked", &got, &score_matrix(&images, &texts, PairScore::Cosine), 2e-6, 0.0);
    let xs: Vec<f32> = (0..300).map(|_| (rng.below(9) as f32) - 4.0).collect();
    let groups: Vec<u32> = (0..300).map(|_| rng.below(5) as u32).collect();
    let got = g.grouped_softmax_ranks(&xs, &groups).await.unwrap();
    assert_close("softmax", &got.probabilities, &grouped_softmax(&xs, &groups), 1e-7, 2e-6);
    assert_eq!(got.ranks, grouped_ranks(&xs, &groups));
}

#[wasm_bindgen_test]
async fn longalign_matches_core() {
    let g = gpu().await;
    let mut rng = Rng::new(22);
    let prompts = rng.embeddings(20, 16);
    let u = common_direction(&prompts);
    let (images, texts) = (rng.embeddings(9, 16), rng.embeddings(5, 16));
    let parts = g.decompose(&images, &texts, &u, 100.0).await.unwrap();
    let want = decompose_all(&images, &texts, &u, 100.0);
    let rel: Vec<f32> = want.iter().map(|d| d.relevant).collect();
    assert_close("relevant", &parts.relevant, &rel, 2e-3, 0.0);
    let got = parts.reweighted(&g, 0.3).await.unwrap();
    let want: Vec<f32> = want.iter().map(|d| d.reweighted(0.3)).collect();
    assert_close("reweighted", &got, &want, 6e-3, 0.0);
}

#[wasm_bindgen_test]
async fn preference_metrics_match_core() {
    let g = gpu().await;
    let mut rng = Rng::new(23);
    let n = 300;
    let col = |rng: &mut Rng| (0..n).map(|_| -rng.uniform(10.0, 400.0)).collect::<Vec<f64>>();
    let (pc, pr, rc, rr) = (col(&mut rng), col(&mut rng), col(&mut rng), col(&mut rng));
    let lens: Vec<f64> = (0..n).map(|_| 1.0 + rng.below(100) as f64).collect();
    let p = PairLogps {
        policy_chosen: &pc,
        policy_rejected: &pr,
        reference_chosen: &rc,
        reference_rejected: &rr,
        chosen_length: Some(&lens),
        rejected_length: Some(&lens),
    };
    let params = PairwiseParams { label_smoothing: 0.1, ..PairwiseParams::default() };
    for losses in
        [vec![(LossType::Sigmoid, 1.0)], vec![(LossType::Aot, 1.0)], vec![(LossType::Ipo, 0.5), (LossType::Sft, 1.0)]]
    {
        let objective = Objective::Pairwise { losses, params };
        let want = objective.evaluate_pairs(&p, 0.0).unwrap();
        let got = g.evaluate_pairs(&objective, &p, 0.0).await.unwrap();
        for (k, v) in &want.metrics {
            assert_close(k, &[got.metrics[k]], &[*v], 2e-5, 2e-5);
        }
        assert_close("loss", &got.pairs.loss, &want.pairs.loss, 2e-5, 2e-5);
    }
    let values: Vec<f64> = pc.iter().zip(&pr).map(|(a, b)| a - b).collect();
    assert_eq!(g.histogram(&values, 12, None).await.unwrap(), histogram(&values, 12, None));
    let offsets: Vec<usize> = (0..=30).map(|i| i * 10).collect();
    let sums = g.segment_sums(&pc, &offsets).await.unwrap();
    assert_close("segment sums", &sums, &segment_sums(&pc, &offsets), 1e-3, 1e-6);
}

#[wasm_bindgen_test]
async fn preprocessing_matches_core() {
    let g = gpu().await;
    let mut rng = Rng::new(24);
    let (w, h) = (37, 23);
    let rgba: Vec<u8> = (0..w * h * 4).map(|_| rng.below(256) as u8).collect();
    for preset in [Preset::clip(16), Preset::hps(16)] {
        let want = preprocess(&rgba, w, h, &preset).unwrap();
        let got = g.preprocess(&rgba, w, h, &preset).await.unwrap();
        assert_close("pixels", &got.data, &want.data, 1e-6, 0.0);
    }
}

#[wasm_bindgen_test]
async fn transformer_kernels_match_core() {
    let g = gpu().await;
    // Off the tiles, f32 and f16 weights (packed: no shader-f16 needed), batch above 64.
    transformer::check_linear(&g, 7, 37, 23, 1).await;
    transformer::check_linear(&g, 65, 19, 6, 2).await;
    transformer::check_linear(&g, 9, 12, 20, 7).await;
    transformer::check_layer_norm(&g, 7, 37, 3).await;
    transformer::check_attention(&g, 3, 7, 2, 5, 4).await;
    transformer::check_attention(&g, 65, 2, 1, 3, 5).await;
    transformer::check_embeddings(&g, 2, 6).await;
    transformer::check_refusals(&g).await;
}

#[wasm_bindgen_test]
async fn annotator_kernels_and_em_match_core() {
    let g = gpu().await;
    // Past a 64-wide tile, then chunked pairs and batched groups, then a whole fit.
    annotators::check_terms_and_moments(&g, 37, 70, 2, 1).await;
    annotators::check_terms_and_moments(&g.clone().with_binding_limit(4096), 37, 20, 3, 2).await;
    annotators::check_em(&g, 12, 10, 3).await;
    annotators::check_refusals(&g).await;
}

/// Two tasks on one device awaited together: each pops its own error scopes (WebGPU fails a
/// pop out of order, and the page used to stop on it when a file was opened while the
/// bundled pairs were still being scored).
#[wasm_bindgen_test]
async fn concurrent_tasks_keep_their_error_scopes() {
    let g = gpu().await;
    let mut rng = Rng::new(5);
    let values: Vec<f64> = (0..1000).map(|_| rng.normal()).collect();
    let z: Vec<f64> = (0..30).map(|_| rng.normal()).collect();
    let device = g.upload_pairs(&z, 3, &[1.0; 10]).unwrap();
    let terms = device.pair_terms(&[0.5, -0.5, 1.0], 1, &[1.0; 10]);
    let (terms, counts) = futures_util::future::join(terms, g.histogram(&values, 12, None)).await;
    assert_eq!(terms.unwrap().len(), 40);
    assert_eq!(counts.unwrap(), histogram(&values, 12, None));
}
