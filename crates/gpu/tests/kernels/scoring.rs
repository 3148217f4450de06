//! Scoring kernels against their core twins: similarity with every preset's epilogue,
//! grouped softmax and ranks, LongAlign. Tolerances: similarity 2e-6 absolute on cosines
//! (scaled by the preset's factor), softmax 1e-6 relative, ranks exact, LongAlign 2e-5
//! absolute times the scale.

use crate::common::{assert_close, gpu, tiny, Rng};
use prefscope_core::scoring::clip_score::{grouped_ranks, grouped_softmax, score_matrix, PairScore};
use prefscope_core::scoring::embedding::Embeddings;
use prefscope_core::scoring::longalign::{common_direction, decompose_all, segment_averages};
use prefscope_gpu::{block_on, Gpu};

const PRESETS: [PairScore; 4] =
    [PairScore::Cosine, PairScore::Logit { logit_scale: 4.6052 }, PairScore::ClipScore, PairScore::ClipScoreOriginal];

fn check_similarity(g: &Gpu, images: &Embeddings, texts: &Embeddings) {
    for score in PRESETS {
        let want = score_matrix(images, texts, score);
        let got = block_on(g.score_matrix(images, texts, score)).unwrap();
        let scale = score.affine().0 as f64;
        assert_close(&format!("{score:?}"), &got, &want, 2e-6 * scale, 0.0);
    }
}

#[test]
fn similarity_matches_core_on_odd_shapes() {
    let g = gpu();
    let mut rng = Rng::new(1);
    // Sizes off the 64×64 tile and the 16-wide k step, a single row, width 1.
    for &(ni, nt, dim) in &[(67, 130, 77), (1, 1, 1), (3, 200, 16), (129, 5, 512)] {
        check_similarity(&g, &rng.embeddings(ni, dim), &rng.embeddings(nt, dim));
    }
}

#[test]
fn similarity_handles_zero_rows_and_large_values() {
    let g = gpu();
    let mut rng = Rng::new(2);
    let mut images = rng.embeddings(10, 33);
    images.data[..33].fill(0.0);
    for v in &mut images.data[33..66] {
        *v *= 1e15;
    }
    let texts = rng.embeddings(9, 33);
    check_similarity(&g, &images, &texts);
    // Identical directions give cosine 1.
    let got = block_on(g.score_matrix(&texts, &texts, PairScore::Cosine)).unwrap();
    for i in 0..9 {
        assert!((got[i * 9 + i] - 1.0).abs() < 2e-6);
    }
}

#[test]
fn similarity_chunks_past_the_binding_limit() {
    let g = tiny(1024);
    let mut rng = Rng::new(3);
    check_similarity(&g, &rng.embeddings(45, 20), &rng.embeddings(31, 20));
    let wide = rng.embeddings(2, 300);
    let err = block_on(g.score_matrix(&wide, &wide, PairScore::Cosine)).unwrap_err();
    assert!(err.to_string().contains("binding limit"), "{err}");
}

#[test]
fn grouped_softmax_and_ranks_match_core() {
    let g = gpu();
    let mut rng = Rng::new(4);
    let n = 3000;
    // 40 groups in scrambled order, one of them empty, many ties (scores on a coarse grid),
    // one large group crossing a workgroup, signed zeros.
    let mut groups: Vec<u32> = (0..n).map(|_| rng.below(40) as u32).filter(|&g| g != 7).collect();
    groups.extend(std::iter::repeat_n(41, 600));
    let mut xs: Vec<f32> = groups.iter().map(|_| (rng.below(20) as f32 - 10.0) * 0.5).collect();
    xs[0] = -0.0;
    xs[1] = 0.0;
    xs[2] = 80.0;
    for (name, g) in [("full", g.clone()), ("chunked", g.clone().with_binding_limit(4096))] {
        let got = block_on(g.grouped_softmax_ranks(&xs, &groups)).unwrap();
        assert_close(name, &got.probabilities, &grouped_softmax(&xs, &groups), 1e-7, 2e-6);
        assert_eq!(got.ranks, grouped_ranks(&xs, &groups), "{name}");
    }
    let too_big = g.with_binding_limit(256);
    assert!(block_on(too_big.grouped_softmax_ranks(&xs, &groups)).is_err(), "a 600-member group exceeds 256 bytes");
}

#[test]
fn longalign_matches_core() {
    for (name, g) in [("full", gpu()), ("chunked", tiny(2048))] {
        let mut rng = Rng::new(5);
        let dim = 24;
        let prompts = rng.embeddings(50, dim);
        let u = common_direction(&prompts);
        // Texts of 1 to 4 segments, averaged without renormalising.
        let mut offsets = vec![0usize];
        for _ in 0..23 {
            offsets.push(offsets.last().unwrap() + 1 + rng.below(4) as usize);
        }
        let segments = rng.embeddings(*offsets.last().unwrap(), dim);
        let want_texts = segment_averages(&segments, &offsets);
        let images = rng.embeddings(37, dim);
        let scale = 100.0;
        let parts = block_on(g.decompose(&images, &want_texts, &u, scale)).unwrap();
        let want = decompose_all(&images, &want_texts, &u, scale);
        let rel: Vec<f32> = want.iter().map(|d| d.relevant).collect();
        let irr: Vec<f32> = want.iter().map(|d| d.irrelevant).collect();
        assert_close(&format!("{name} relevant"), &parts.relevant, &rel, 2e-5 * scale as f64, 0.0);
        assert_close(&format!("{name} irrelevant"), &parts.irrelevant, &irr, 2e-5 * scale as f64, 0.0);
        for w in [0.0, 0.3, 1.0, -2.5] {
            let got = block_on(parts.reweighted(&g, w)).unwrap();
            let want: Vec<f32> = want.iter().map(|d| d.reweighted(w)).collect();
            assert_close(&format!("{name} reweighted {w}"), &got, &want, 6e-5 * scale as f64, 0.0);
        }
    }
}

/// A manifest's rows in one pass: parts, score (clamped or not), reweighted score, softmax and
/// ranks within groups, against core's formulas combined as prefscope-clip's scorer does.
/// Ranks must agree wherever a row's score is not within 1e-4 of another in its group.
#[test]
fn rows_scored_in_one_pass_match_core() {
    let g = gpu();
    let mut rng = Rng::new(41);
    let images = rng.embeddings(23, 17).normalized();
    let texts = rng.embeddings(6, 17);
    let u = common_direction(&rng.embeddings(9, 17));
    let rows: Vec<(usize, usize)> = (0..70).map(|_| (rng.below(23) as usize, rng.below(6) as usize)).collect();
    let groups: Vec<u32> = rows.iter().map(|&(_, j)| (j % 4) as u32).collect();
    for score in PRESETS {
        let (scale, clamp) = score.affine();
        let request = prefscope_gpu::RowRequest {
            images: &images,
            texts: &texts,
            u: &u,
            rows: &rows,
            groups: &groups,
            scale,
            clamp,
            reweight: 0.3,
        };
        let got = block_on(g.score_rows(&request)).unwrap();
        let parts: Vec<_> = rows
            .iter()
            .map(|&(i, j)| prefscope_core::scoring::longalign::decompose(texts.row(j), images.row(i), &u, scale))
            .collect();
        let want_score: Vec<f32> = rows
            .iter()
            .map(|&(i, j)| score.apply(prefscope_core::scoring::embedding::dot(texts.row(j), images.row(i)) as f32))
            .collect();
        let what = format!("{score:?}");
        let tol = 2e-5 * scale as f64;
        assert_close(
            &format!("{what} relevant"),
            &got.relevant,
            &parts.iter().map(|p| p.relevant).collect::<Vec<_>>(),
            tol,
            0.0,
        );
        assert_close(
            &format!("{what} irrelevant"),
            &got.irrelevant,
            &parts.iter().map(|p| p.irrelevant).collect::<Vec<_>>(),
            tol,
            0.0,
        );
        assert_close(&format!("{what} score"), &got.score, &want_score, tol, 0.0);
        let reweighted: Vec<f32> = parts.iter().map(|p| p.reweighted(0.3)).collect();
        assert_close(&format!("{what} reweighted"), &got.reweighted, &reweighted, tol, 0.0);
        let probability = grouped_softmax(&want_score, &groups);
        assert_close(&format!("{what} probability"), &got.probability, &probability, 1e-5, 1e-4);
        let ranks = grouped_ranks(&want_score, &groups);
        for r in 0..rows.len() {
            let near = (0..rows.len())
                .any(|o| o != r && groups[o] == groups[r] && (want_score[o] - want_score[r]).abs() < 1e-4 * scale);
            if !near {
                assert_eq!(got.rank[r], ranks[r], "{what}: rank of row {r}");
            }
        }
    }
    // Out-of-range rows and mismatched groups are errors.
    let bad = prefscope_gpu::RowRequest {
        images: &images,
        texts: &texts,
        u: &u,
        rows: &[(23, 0)],
        groups: &[0],
        scale: 1.0,
        clamp: false,
        reweight: 0.3,
    };
    assert!(block_on(g.score_rows(&bad)).unwrap_err().to_string().contains("row (23, 0)"));
    // Past one binding: refused, so the caller can score on the CPU.
    let small = tiny(256);
    let request = prefscope_gpu::RowRequest { rows: &rows, groups: &groups, ..bad };
    assert!(matches!(block_on(small.score_rows(&request)), Err(prefscope_gpu::GpuError::TooLarge { .. })));
}
