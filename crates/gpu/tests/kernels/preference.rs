//! Preference kernels against core: every objective and loss type on random and adversarial
//! log-probabilities, in one pass and chunked. Tolerance: 2e-5 relative plus 2e-5 absolute
//! on per-pair values and metrics (f32 after an exact-ish f64 subtraction on the device).

use crate::common::{assert_close, gpu, tiny, Rng};
use prefscope_core::preference::dpo::{
    BcoParams, CpoLoss, CpoParams, Evaluation, FDivergence, KtoParams, LossType, Objective, OrpoParams, PairLogps,
    PairwiseParams,
};
use prefscope_gpu::{block_on, Gpu};

struct Columns {
    pc: Vec<f64>,
    pr: Vec<f64>,
    rc: Vec<f64>,
    rr: Vec<f64>,
    cl: Vec<f64>,
    rl: Vec<f64>,
}

impl Columns {
    /// Sequence log-probs in the hundreds with small policy–reference differences, as real
    /// exports have; lengths 1–300.
    fn random(n: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut c = Columns { pc: vec![], pr: vec![], rc: vec![], rr: vec![], cl: vec![], rl: vec![] };
        for _ in 0..n {
            let (cl, rl) = (1.0 + rng.below(300) as f64, 1.0 + rng.below(300) as f64);
            let rc = -cl * rng.uniform(0.2, 3.0);
            let rr = -rl * rng.uniform(0.2, 3.0);
            c.rc.push(rc);
            c.rr.push(rr);
            // ORPO needs average log-probs ≤ 0.
            c.pc.push((rc + 5.0 * rng.normal()).min(-0.01 * cl));
            c.pr.push((rr + 5.0 * rng.normal()).min(-0.01 * rl));
            c.cl.push(cl);
            c.rl.push(rl);
        }
        c
    }

    fn pairs(&self) -> PairLogps<'_> {
        PairLogps {
            policy_chosen: &self.pc,
            policy_rejected: &self.pr,
            reference_chosen: &self.rc,
            reference_rejected: &self.rr,
            chosen_length: Some(&self.cl),
            rejected_length: Some(&self.rl),
        }
    }
}

/// `metric_abs`: absolute tolerance of the batch metrics, which sum f32 values on the device.
fn compare(name: &str, got: &Evaluation, want: &Evaluation, tol: f64, metric_abs: f64) {
    assert_eq!(got.metrics.keys().collect::<Vec<_>>(), want.metrics.keys().collect::<Vec<_>>(), "{name}: metric names");
    for (k, w) in &want.metrics {
        assert_close(&format!("{name} {k}"), &[got.metrics[k]], &[*w], metric_abs, tol);
    }
    let (g, w) = (&got.pairs, &want.pairs);
    assert_close(&format!("{name} chosen reward"), &g.chosen_reward, &w.chosen_reward, tol, tol);
    assert_close(&format!("{name} rejected reward"), &g.rejected_reward, &w.rejected_reward, tol, tol);
    assert_close(&format!("{name} margin"), &g.margin, &w.margin, tol, tol);
    assert_close(&format!("{name} loss"), &g.loss, &w.loss, tol, tol);
}

fn objectives() -> Vec<(String, Objective, f64)> {
    let smoothing = PairwiseParams { label_smoothing: 0.1, ..PairwiseParams::default() };
    let mut all: Vec<(String, Objective, f64)> = LossType::ALL
        .iter()
        .map(|&l| {
            let params = if matches!(l, LossType::ExoPair | LossType::Robust | LossType::Cdpo | LossType::Aot) {
                smoothing
            } else {
                PairwiseParams::default()
            };
            (l.name().to_string(), Objective::Pairwise { losses: vec![(l, 1.0)], params }, 0.0)
        })
        .collect();
    let combo =
        vec![(LossType::Sigmoid, 0.8), (LossType::Sft, 0.2), (LossType::AotUnpaired, 0.5), (LossType::Ipo, 1.0)];
    all.push(("combination".into(), Objective::Pairwise { losses: combo, params: smoothing }, 0.0));
    for (f, name) in [
        (FDivergence::ForwardKl, "forward_kl"),
        (FDivergence::JsDivergence, "js"),
        (FDivergence::AlphaDivergence(0.3), "alpha"),
    ] {
        let params = PairwiseParams { f_divergence: f, ..PairwiseParams::default() };
        let losses = vec![(LossType::Sigmoid, 1.0), (LossType::Hinge, 0.5), (LossType::Discopop, 0.5)];
        all.push((format!("sigmoid+hinge+discopop {name}"), Objective::Pairwise { losses, params }, 0.0));
    }
    for loss in [CpoLoss::Sigmoid, CpoLoss::Hinge, CpoLoss::Ipo] {
        all.push((
            format!("cpo {loss:?}"),
            Objective::Cpo(CpoParams { loss, label_smoothing: 0.05, ..CpoParams::default() }),
            0.0,
        ));
    }
    all.push(("simpo".into(), Objective::Cpo(CpoParams::simpo()), 0.0));
    all.push(("orpo".into(), Objective::Orpo(OrpoParams::default()), 0.0));
    all.push(("kto".into(), Objective::Kto(KtoParams { desirable_weight: 1.3, ..KtoParams::default() }), 0.7));
    all.push(("bco".into(), Objective::Bco(BcoParams::default()), 0.0));
    all
}

fn check_all(g: &Gpu, cols: &Columns, tol: f64) {
    let p = cols.pairs();
    for (name, objective, kl) in objectives() {
        let want = objective.evaluate_pairs(&p, kl).unwrap();
        let got = block_on(g.evaluate_pairs(&objective, &p, kl)).unwrap();
        compare(&name, &got, &want, tol, tol);
    }
}

#[test]
fn every_objective_matches_core() {
    // 3001 pairs: not a multiple of the workgroup, AOT's sort pads to 4096.
    check_all(&gpu(), &Columns::random(3001, 1), 2e-5);
}

#[test]
fn every_objective_matches_core_in_chunks() {
    // 512-byte bindings: a few pairs per chunk, AOT sorted on the host.
    check_all(&tiny(512), &Columns::random(333, 2), 2e-5);
}

#[test]
fn extreme_margins_stay_finite() {
    // βδ = ±1e4 and log-probs near −1e6, where f32 alone would lose every digit.
    let mut c = Columns::random(64, 3);
    for i in 0..64 {
        let s = if i % 2 == 0 { 1.0 } else { -1.0 };
        c.rc[i] = -1e6;
        c.pc[i] = -1e6 + s * 5e4;
        c.rr[i] = -1e6 + 0.001;
        c.pr[i] = -1e6 - s * 5e4;
    }
    let g = gpu();
    let p = c.pairs();
    for &loss in LossType::ALL {
        let params = PairwiseParams { label_smoothing: 0.1, ..PairwiseParams::default() };
        let objective = Objective::Pairwise { losses: vec![(loss, 1.0)], params };
        let want = objective.evaluate_pairs(&p, 0.0).unwrap();
        let got = block_on(g.evaluate_pairs(&objective, &p, 0.0)).unwrap();
        assert!(got.pairs.loss.iter().all(|v| v.is_finite()), "{}: {:?}", loss.name(), got.pairs.loss);
        // Means of ±1e4 terms in f32: a few hundredths absolute. AOT sorts its margins as f32
        // (as TRL does in float32): keys of 5e4 carry 4e-3 of rounding, times β.
        let tol = if matches!(loss, LossType::Aot | LossType::AotUnpaired) { 1e-3 } else { 2e-5 };
        compare(loss.name(), &got, &want, tol, 0.05);
    }
}

#[test]
fn refuses_what_core_refuses() {
    let c = Columns::random(10, 4);
    let mut p = c.pairs();
    let g = gpu();
    let exo = Objective::Pairwise { losses: vec![(LossType::ExoPair, 1.0)], params: PairwiseParams::default() };
    let e = block_on(g.evaluate_pairs(&exo, &p, 0.0)).unwrap_err();
    assert_eq!(e.to_string(), exo.evaluate_pairs(&p, 0.0).unwrap_err().to_string());
    p.chosen_length = None;
    let ipo = Objective::Pairwise { losses: vec![(LossType::Ipo, 1.0)], params: PairwiseParams::default() };
    let e = block_on(g.evaluate_pairs(&ipo, &p, 0.0)).unwrap_err();
    assert!(e.to_string().contains("completion lengths"), "{e}");
}
