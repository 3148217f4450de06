//! The GPU and CPU paths agree on random inputs (proptest, shrinking to a small failing
//! case): DPO reports over random log-probabilities and objectives, and the LongAlign split
//! of random embeddings. Few cases: each one runs on the software adapter.

use crate::common::{assert_close, gpu};
use prefscope_core::io::read::Preferences;
use prefscope_core::preference::report::{report, ReportRequest};
use prefscope_core::scoring::embedding::Embeddings;
use prefscope_core::scoring::longalign::decompose_all;
use prefscope_core::{DpoRecord, DpoTable};
use prefscope_gpu::{block_on, Gpu};
use proptest::prelude::*;

/// One device for every case.
fn device() -> Gpu {
    static GPU: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    GPU.get_or_init(gpu).clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn dpo_reports_agree(
        rows in prop::collection::vec((prop::array::uniform4(-300.0f64..0.0), 1u32..50, 1u32..50), 1..300),
        beta in 0.01f64..2.0,
        objective in prop::sample::select(vec!["sigmoid", "hinge", "ipo", "robust", "bco_pair", "sigmoid,sft", "simpo", "orpo", "kto"]),
    ) {
        let table = DpoTable::from_records("random", rows.iter().enumerate().map(|(i, (l, cl, rl))| DpoRecord {
            id: format!("r{i}"),
            policy_chosen_logps: l[0],
            policy_rejected_logps: l[1],
            reference_chosen_logps: l[2],
            reference_rejected_logps: l[3],
            chosen_length: Some(*cl),
            rejected_length: Some(*rl),
            ..DpoRecord::default()
        }));
        let data = Preferences::Dpo(table);
        let request = ReportRequest { objective: objective.into(), beta: Some(beta), ..ReportRequest::default() };
        let want = report(&data, &request).unwrap();
        let got = block_on(device().report(&data, &request)).unwrap();
        // The GPU rounds each reward to f32 (an exact f64 difference of log-probs first), so a
        // margin of two rewards near 600 carries their rounding, about 1e-7 of their size.
        let largest = rows.iter().flat_map(|(l, _, _)| l.iter()).fold(0f64, |m, v| m.max(v.abs()));
        let abs = 2e-5 + 1e-6 * largest * beta.max(1.0);
        for (k, v) in &want.evaluation.metrics {
            assert_close(&format!("{objective} {k}"), &[got.evaluation.metrics[k]], &[*v], abs, 2e-5);
        }
        assert_close(&format!("{objective} loss"), &got.evaluation.pairs.loss, &want.evaluation.pairs.loss, abs, 2e-5);
        assert_close(&format!("{objective} margin"), &got.evaluation.pairs.margin, &want.evaluation.pairs.margin, abs, 2e-5);
    }

    #[test]
    fn longalign_splits_agree(
        (dim, images, texts, u) in (1usize..40).prop_flat_map(|d| (
            Just(d),
            prop::collection::vec(-1.0f32..1.0, d..d * 12),
            prop::collection::vec(-1.0f32..1.0, d..d * 12),
            prop::collection::vec(-1.0f32..1.0, d),
        )),
        scale in 0.1f32..100.0,
    ) {
        let rows = |v: Vec<f32>| { let n = v.len() / dim; Embeddings::new(dim, v[..n * dim].to_vec()).unwrap() };
        let (images, texts) = (rows(images), rows(texts));
        let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt();
        prop_assume!(norm > 1e-3);
        let u: Vec<f32> = u.iter().map(|x| x / norm).collect();
        let want = decompose_all(&images, &texts, &u, scale);
        let got = block_on(device().decompose(&images, &texts, &u, scale)).unwrap();
        let relevant: Vec<f32> = want.iter().map(|p| p.relevant).collect();
        let irrelevant: Vec<f32> = want.iter().map(|p| p.irrelevant).collect();
        assert_close("relevant", &got.relevant, &relevant, 1e-4 * scale as f64, 1e-4);
        assert_close("irrelevant", &got.irrelevant, &irrelevant, 1e-4 * scale as f64, 1e-4);
    }
}
