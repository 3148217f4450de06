//! Identities the formulas must keep on any input (proptest, shrinking to a small failing
//! case): swapping chosen and rejected negates every margin and reward accuracy; the LongAlign
//! parts sum to the score they split.

use prefscope_core::preference::dpo::{Objective, PairwiseParams};
use prefscope_core::scoring::longalign::decompose;
use prefscope_core::{DpoRecord, DpoTable};
use proptest::prelude::*;

fn record(i: usize, logps: [f64; 4]) -> DpoRecord {
    DpoRecord {
        id: format!("r{i}"),
        policy_chosen_logps: logps[0],
        policy_rejected_logps: logps[1],
        reference_chosen_logps: logps[2],
        reference_rejected_logps: logps[3],
        ..DpoRecord::default()
    }
}

fn logps() -> impl Strategy<Value = Vec<[f64; 4]>> {
    prop::collection::vec(prop::array::uniform4(-500.0f64..0.0), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn swapping_chosen_and_rejected_negates_every_margin(
        rows in logps(),
        beta in 0.01f64..5.0,
        loss in prop::sample::select(vec!["sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "nca_pair"]),
    ) {
        let table = DpoTable::from_records("t", rows.iter().enumerate().map(|(i, l)| record(i, *l)));
        let swapped = DpoTable::from_records("t", rows.iter().enumerate().map(|(i, l)| record(i, [l[1], l[0], l[3], l[2]])));
        let params = PairwiseParams { beta, ..PairwiseParams::default() };
        let objective = Objective::parse(loss, None, params).unwrap();
        let (Ok(a), Ok(b)) = (objective.evaluate(&table), objective.evaluate(&swapped)) else {
            // ipo needs lengths: both sides refuse alike.
            prop_assert!(objective.evaluate(&table).is_err() && objective.evaluate(&swapped).is_err());
            return Ok(());
        };
        for (x, y) in a.pairs.margin.iter().zip(&b.pairs.margin) {
            prop_assert_eq!(*x, -*y);
        }
        prop_assert_eq!(&a.pairs.chosen_reward, &b.pairs.rejected_reward);
        // A pair counts as correct when its margin is positive: ties count in neither.
        let ties = a.pairs.margin.iter().filter(|m| **m == 0.0).count() as f64 / rows.len() as f64;
        let (acc_a, acc_b) = (a.metrics["rewards/accuracies"], b.metrics["rewards/accuracies"]);
        prop_assert!((acc_a + acc_b + ties - 1.0).abs() < 1e-12, "{} + {} + {}", acc_a, acc_b, ties);
    }

    #[test]
    fn relevant_plus_irrelevant_is_the_score(
        (text, image, u) in (1usize..64).prop_flat_map(|d| (
            prop::collection::vec(-1.0f32..1.0, d),
            prop::collection::vec(-1.0f32..1.0, d),
            prop::collection::vec(-1.0f32..1.0, d),
        )),
        scale in 0.1f32..100.0,
    ) {
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        prop_assume!(norm(&image) > 1e-3 && norm(&u) > 1e-3);
        let u: Vec<f32> = u.iter().map(|x| (*x as f64 / norm(&u)) as f32).collect();
        let parts = decompose(&text, &image, &u, scale);
        let cos: f64 = text.iter().zip(&image).map(|(t, i)| *t as f64 * *i as f64).sum::<f64>() / norm(&image);
        let want = cos * scale as f64;
        let got = parts.relevant as f64 + parts.irrelevant as f64;
        prop_assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "{} vs {}", got, want);
    }
}
