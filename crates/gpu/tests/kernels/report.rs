//! `prefscope dpo`'s report on the GPU against core's: the bundled sample export (per-token
//! arrays, lengths) under several objectives, and Diffusion-DPO/MaPO rows with pairs sampled
//! at several timesteps. Tolerance 2e-5 relative plus 2e-5 absolute.

use crate::common::{assert_close, gpu, tiny, Rng};
use prefscope_core::io::read::{read_preferences, Input, Preferences};
use prefscope_core::io::record::{DiffusionRecord, DiffusionTable};
use prefscope_core::preference::report::{report, Report, ReportRequest};
use prefscope_gpu::{block_on, Gpu};

fn compare(name: &str, got: &Report<'_>, want: &Report<'_>) {
    assert_eq!(got.ids, want.ids, "{name}: ids");
    let (g, w) = (&got.evaluation, &want.evaluation);
    assert_eq!(g.metrics.keys().collect::<Vec<_>>(), w.metrics.keys().collect::<Vec<_>>(), "{name}: metric names");
    for (k, v) in &w.metrics {
        assert_close(&format!("{name} {k}"), &[g.metrics[k]], &[*v], 2e-5, 2e-5);
    }

    assert_close(&format!("{name} margin"), &g.pairs.margin, &w.pairs.margin, 2e-5, 2e-5);
    assert_close(&format!("{name} chosen"), &g.pairs.chosen_reward, &w.pairs.chosen_reward, 2e-5, 2e-5);
    assert_close(&format!("{name} rejected"), &g.pairs.rejected_reward, &w.pairs.rejected_reward, 2e-5, 2e-5);
    assert_close(&format!("{name} loss"), &g.pairs.loss, &w.pairs.loss, 2e-5, 2e-5);
}

fn check(g: &Gpu, data: &Preferences, requests: &[ReportRequest]) {
    for request in requests {
        let want = report(data, request).unwrap();
        let got = block_on(g.report(data, request)).unwrap();
        compare(&request.objective, &got, &want);
    }
}

#[test]
fn dpo_sample_report_matches_core() {
    let path = format!("{}/../../tests/fixtures/dpo_sample.jsonl", env!("CARGO_MANIFEST_DIR"));
    let data = read_preferences(Input::Path(path.as_ref()), None, &mut |_| {}).unwrap();
    let req = |objective: &str, weights: Option<Vec<f64>>| ReportRequest {
        objective: objective.into(),
        weights,
        ..ReportRequest::default()
    };
    let requests = [
        req("sigmoid", None),
        req("ipo", None),
        req("sigmoid,bco_pair,sft", Some(vec![0.8, 0.2, 1.0])),
        req("simpo", None),
        req("orpo", None),
        req("kto", None),
        req("bco", None),
        ReportRequest { beta: Some(0.5), ..req("aot", None) },
    ];
    check(&gpu(), &data, &requests);
    check(&tiny(256), &data, &requests[..3]);
}

#[test]
fn diffusion_report_matches_core() {
    let mut rng = Rng::new(12);
    let mut table = DiffusionTable::new("diffusion");
    for row in 0..700 {
        let m = rng.uniform(0.05, 0.3);
        table.push(DiffusionRecord {
            // 300 pairs, most sampled at two or three timesteps, ids interleaved.
            id: format!("pair-{}", (row * 7) % 300),
            model_mse_chosen: m + 1e-3 * rng.normal(),
            model_mse_rejected: m + 1e-3 * rng.normal(),
            reference_mse_chosen: m + 1e-3 * rng.normal(),
            reference_mse_rejected: m + 1e-3 * rng.normal(),
        });
    }
    let data = Preferences::Diffusion(table);
    let requests = [
        ReportRequest { objective: "diffusion_dpo".into(), ..ReportRequest::default() },
        ReportRequest { objective: "mapo".into(), ..ReportRequest::default() },
    ];
    check(&gpu(), &data, &requests);
    check(&tiny(512), &data, &requests);
}

/// Found by tests/kernels/properties.rs: ORPO's log-odds of a completion whose mean token
/// log-prob is below −16.6 (e^x under half an ulp of 1) was NaN on the GPU (log1mexp's 0·∞).
#[test]
fn orpo_log_odds_survive_very_unlikely_completions() {
    use prefscope_core::{DpoRecord, DpoTable};
    let rows = [(-290.0, -74.8, 1, 16), (-30.0, -250.0, 1, 1), (-2.5, -3.0, 4, 5)];
    let table = DpoTable::from_records(
        "orpo",
        rows.iter().enumerate().map(|(i, &(c, r, lc, lr))| DpoRecord {
            id: format!("r{i}"),
            policy_chosen_logps: c,
            policy_rejected_logps: r,
            reference_chosen_logps: c,
            reference_rejected_logps: r,
            chosen_length: Some(lc),
            rejected_length: Some(lr),
            ..DpoRecord::default()
        }),
    );
    let request = ReportRequest { objective: "orpo".into(), ..ReportRequest::default() };
    let data = Preferences::Dpo(table);
    let want = report(&data, &request).unwrap();
    assert!(want.evaluation.metrics["log_odds_chosen"].is_finite());
    compare("orpo", &block_on(gpu().report(&data, &request)).unwrap(), &want);
}
