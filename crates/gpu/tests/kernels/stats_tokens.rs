//! Histograms, ranking accuracy and per-token kernels against core. Histogram counts and
//! ranking accuracies are exact; per-token rewards within 1e-5 absolute (f32 on the device),
//! sequence sums within 1e-5·√tokens relative.

use crate::common::{assert_close, gpu, tiny, Rng};
use prefscope_core::histogram::histogram;
use prefscope_core::io::record::{DpoRecord, DpoTable};
use prefscope_core::preference::ranking::{ranking_accuracy, ranking_accuracy_normalized};
use prefscope_core::preference::tokens::{segment_sums, token_rewards};
use prefscope_gpu::block_on;

#[test]
fn histograms_match_numpy_conventions() {
    let mut rng = Rng::new(7);
    let mut values: Vec<f64> = (0..5000).map(|_| rng.normal() * 3.0).collect();
    // Values on edges, outside the range, non-finite, the extremes repeated.
    values.extend([0.0, 1.0, -1.0, 2.5, 10.0, -10.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    for g in [gpu(), tiny(1024)] {
        for (bins, range) in [(20, None), (7, Some((-1.0, 1.0))), (1, None), (20, Some((0.0, 10.0)))] {
            let want = histogram(&values, bins, range);
            let got = block_on(g.histogram(&values, bins, range)).unwrap();
            assert_eq!(got, want, "bins {bins} range {range:?}");
        }
        let flat = block_on(g.histogram(&[3.0, 3.0], 4, None)).unwrap();
        assert_eq!(flat, histogram(&[3.0, 3.0], 4, None));
    }
}

#[test]
fn ranking_accuracy_matches_core() {
    let mut rng = Rng::new(8);
    let n = 2049;
    let pc: Vec<f64> = (0..n).map(|_| -rng.uniform(1.0, 400.0)).collect();
    let mut pr: Vec<f64> = (0..n).map(|_| -rng.uniform(1.0, 400.0)).collect();
    pr[0] = pc[0]; // a tie counts as ranked correctly (≥)
    pr[1] = pc[1] + 1e-9;
    let cl: Vec<f64> = (0..n).map(|_| 1.0 + rng.below(200) as f64).collect();
    let rl: Vec<f64> = (0..n).map(|_| 1.0 + rng.below(200) as f64).collect();
    for g in [gpu(), tiny(512)] {
        let (raw, norm) = block_on(g.ranking_accuracy(&pc, &pr, Some((&cl, &rl)))).unwrap();
        assert_eq!(raw, ranking_accuracy(&pc, &pr));
        assert_eq!(norm, Some(ranking_accuracy_normalized(&pc, &pr, &cl, &rl)));
    }
}

fn token_table(seed: u64, pairs: usize) -> DpoTable {
    let mut rng = Rng::new(seed);
    DpoTable::from_records(
        "tokens",
        (0..pairs).map(|i| {
            // Lengths 0 (no array), 1, and past the workgroup size.
            let len = match i % 5 {
                0 => 0,
                1 => 1,
                2 => 300 + rng.below(400) as usize,
                _ => rng.below(40) as usize + 1,
            };
            let p: Vec<f64> = (0..len).map(|_| -rng.uniform(0.0, 12.0)).collect();
            let r: Vec<f64> = p.iter().map(|x| x + rng.normal()).collect();
            DpoRecord {
                id: i.to_string(),
                policy_chosen_logps: p.iter().sum(),
                reference_chosen_logps: r.iter().sum(),
                policy_chosen_token_logps: (len > 0).then_some(p),
                reference_chosen_token_logps: (len > 0).then_some(r),
                ..Default::default()
            }
        }),
    )
}

#[test]
fn token_rewards_and_sums_match_core() {
    let table = token_table(9, 203);
    let col = &table.chosen_tokens;
    let offsets = col.offsets();
    let want = token_rewards(col, 0.1);
    let want_sums = segment_sums(&want, &offsets);
    for g in [gpu(), tiny(4096)] {
        let got = block_on(g.token_rewards(col, 0.1)).unwrap();
        assert_close("per token", &got.per_token, &want, 1e-5, 0.0);
        assert_close("per sequence", &got.per_sequence, &want_sums, 1e-5, 1e-5);
        let sums = block_on(g.segment_sums(&col.policy, &offsets)).unwrap();
        assert_close("segment sums", &sums, &segment_sums(&col.policy, &offsets), 1e-4, 1e-5);
    }
    // One sequence longer than a binding cannot be split.
    let err = block_on(tiny(256).token_rewards(col, 0.1)).unwrap_err();
    assert!(err.to_string().contains("binding limit"), "{err}");
}
