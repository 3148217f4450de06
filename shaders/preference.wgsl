// Preference math on exported log-probabilities: per-pair rewards, margins and losses for
// every objective prefscope-core evaluates (crates/core/src/dpo), one thread per pair.

struct Params {
    n: u32,
    // One of the KIND_* below.
    kind: u32,
    n_losses: u32,
    // One of the FDIV_* below.
    fdiv: u32,
    beta: f32,
    eps: f32,
    alpha: f32,
    tau: f32,
    // From a first pass over the batch: the NLL term (SFT, CPO's α·NLL, ORPO), KTO's KL or BCO's δ.
    batch_constant: f32,
    // SimPO's γ or KTO's desirable weight.
    gamma_or_desirable: f32,
    // KTO's undesirable weight.
    undesirable: f32,
    // One of the CPO_* below (KIND_CPO).
    sub: u32,
    losses: array<vec4<u32>, 4>,
    weights: array<vec4<f32>, 4>,
    // MaPO's T and s.
    mapo_timesteps: f32,
    mapo_s: f32,
}

// Objective families (prefscope-gpu's params::kind).
const KIND_PAIRWISE: u32 = 0u;
const KIND_CPO: u32 = 1u;
const KIND_ORPO: u32 = 2u;
const KIND_KTO: u32 = 3u;
const KIND_BCO: u32 = 4u;
const KIND_DIFFUSION_DPO: u32 = 5u;
const KIND_MAPO: u32 = 6u;
// CPO's loss variants (params::cpo_loss).
const CPO_SIGMOID: u32 = 0u;
const CPO_HINGE: u32 = 1u;
const CPO_IPO: u32 = 2u;
const CPO_SIMPO: u32 = 3u;
// f-divergences of the log-ratios (params::fdiv).
const FDIV_REVERSE_KL: u32 = 0u;
const FDIV_FORWARD_KL: u32 = 1u;
const FDIV_JS: u32 = 2u;
const FDIV_ALPHA: u32 = 3u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pc: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> pr: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> rc: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> rr: array<vec2<f32>>;
// Completion lengths (chosen, rejected); unused entries when the input has none.
@group(0) @binding(5) var<storage, read> lens: array<vec2<f32>>;
// AOT's sorted margins: (aot policy, aot reference, unpaired chosen, unpaired rejected).
@group(0) @binding(6) var<storage, read> sorted: array<vec4<f32>>;
// Per pair STRIDE values: reward_c, reward_r, margin, loss, x_c, x_r, correct, aux0, aux1,
// logp_c, len_c, then each loss type's own value when several are combined.
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

const BASE: u32 = 11u;

fn stride() -> u32 {
    if (p.n_losses > 1u) {
        return BASE + p.n_losses;
    }
    return BASE;
}

fn fscore(lr: f32) -> f32 {
    switch p.fdiv {
        case FDIV_FORWARD_KL: { return -expm1(-lr); }
        case FDIV_JS: { return 0.6931472 + log_sigmoid(lr); }
        case FDIV_ALPHA: {
            if (abs(p.alpha - 1.0) < 1e-6) {
                return lr;
            }
            return expm1(min((p.alpha - 1.0) * lr, 80.0)) / (p.alpha - 1.0);
        }
        default: { return lr; }
    }
}

// −(1−ε)·logσ(x) − ε·logσ(−x).
fn smoothed(x: f32, eps: f32) -> f32 {
    return -(1.0 - eps) * log_sigmoid(x) - eps * log_sigmoid(-x);
}

fn log1m(eps: f32) -> f32 {
    let u = 1.0 - eps;
    if (u == 1.0) {
        return -eps;
    }
    return log(u) * (-eps / (u - 1.0));
}

// One DPOTrainer loss type (ids in LossType::ALL order) for pair i.
fn pair_loss(id: u32, i: u32, c: f32, r: f32, sc: f32, sr: f32, lc: f32, lr: f32) -> f32 {
    let beta = p.beta;
    let eps = p.eps;
    let x = beta * (sc - sr);
    let avg = sc / max(lc, 1.0) - sr / max(lr, 1.0);
    switch id {
        case 0u: { return -log_sigmoid(x); }
        case 1u: { return max(1.0 - x, 0.0); }
        case 2u: {
            let d = avg - 1.0 / (2.0 * beta);
            return d * d;
        }
        case 3u: {
            return sigmoid(x) * (log_sigmoid(x) - log1m(eps)) + sigmoid(-x) * (log_sigmoid(-x) - log(eps));
        }
        case 4u: {
            return -log_sigmoid(beta * c) - 0.5 * log_sigmoid(-beta * c) - 0.5 * log_sigmoid(-beta * r);
        }
        case 5u: {
            return (-(1.0 - eps) * log_sigmoid(x) + eps * log_sigmoid(-x)) / (1.0 - 2.0 * eps);
        }
        case 6u: { return -log_sigmoid(beta * c) - log_sigmoid(-beta * r); }
        case 7u: {
            let a = c - 0.5 / beta;
            let b = r + 0.5 / beta;
            return a * a + b * b;
        }
        case 8u: {
            let s = sorted[i];
            return smoothed(beta * (s.x - s.y), eps);
        }
        case 9u: {
            let s = sorted[i];
            return smoothed(beta * (s.z - s.w), eps);
        }
        case 10u: { return sigmoid(-beta * c) + sigmoid(beta * r); }
        case 11u: {
            var down = sigmoid(-x);
            if (p.fdiv != FDIV_REVERSE_KL) {
                down = sigmoid(-beta * (c - r));
            }
            return sigmoid(beta * c) + down;
        }
        case 12u: {
            let z = x / p.tau;
            return sigmoid(-z) * -log_sigmoid(x) + exp(log_sigmoid(z) - x);
        }
        case 13u: { return p.batch_constant; }
        case 14u: { return -log_sigmoid(beta * avg); }
        default: { return smoothed(x, eps); }
    }
}

@compute @workgroup_size(256)
fn pair_values(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let beta = p.beta;
    let eps = p.eps;
    let c = diff2(pc[i], rc[i]);
    let r = diff2(pr[i], rr[i]);
    let len = lens[min(i, arrayLength(&lens) - 1u)];
    let logp_c = val2(pc[i]);
    let logp_r = val2(pr[i]);
    let o = i * stride();
    var xc = logp_c;
    var xr = logp_r;
    var reward_c = beta * c;
    var reward_r = beta * r;
    var loss = 0.0;
    var aux0 = 0.0;
    var aux1 = 0.0;
    switch p.kind {
        case KIND_PAIRWISE: {
            let sc = fscore(c);
            let sr = fscore(r);
            for (var k = 0u; k < p.n_losses; k++) {
                let l = pair_loss(p.losses[k / 4u][k % 4u], i, c, r, sc, sr, len.x, len.y);
                loss += p.weights[k / 4u][k % 4u] * l;
                if (p.n_losses > 1u) {
                    out[o + BASE + k] = l;
                }
            }
        }
        case KIND_CPO: {
            var logits = diff2(pc[i], pr[i]);
            if (p.sub == CPO_IPO || p.sub == CPO_SIMPO) {
                xc = logp_c / len.x;
                xr = logp_r / len.y;
                logits = xc - xr;
            }
            reward_c = beta * xc;
            reward_r = beta * xr;
            switch p.sub {
                case CPO_HINGE: { loss = max(1.0 - beta * logits, 0.0); }
                case CPO_IPO: {
                    let d = logits - 1.0 / (2.0 * beta);
                    loss = d * d;
                }
                default: {
                    // CPO_SIGMOID, CPO_SIMPO
                    var shift = 0.0;
                    if (p.sub == CPO_SIMPO) {
                        shift = p.gamma_or_desirable / beta;
                    }
                    loss = smoothed(beta * (logits - shift), eps);
                }
            }
            loss += p.batch_constant;
        }
        case KIND_ORPO: {
            xc = logp_c / len.x;
            xr = logp_r / len.y;
            reward_c = beta * xc;
            reward_r = beta * xr;
            aux0 = (xc - xr) - (log1mexp(xc) - log1mexp(xr));
            aux1 = log_sigmoid(aux0);
            loss = p.batch_constant - beta * aux1;
        }
        case KIND_KTO: {
            let kl = p.batch_constant;
            aux0 = p.gamma_or_desirable * sigmoid(-beta * (c - kl));
            aux1 = p.undesirable * sigmoid(-beta * (kl - r));
            loss = 0.5 * (aux0 + aux1);
        }
        default: {
            // KIND_BCO
            let delta = p.batch_constant;
            aux0 = -log_sigmoid(beta * c - delta);
            aux1 = -log_sigmoid(-(beta * r - delta));
            loss = 0.5 * (aux0 + aux1);
        }
    }
    out[o] = reward_c;
    out[o + 1u] = reward_r;
    out[o + 2u] = reward_c - reward_r;
    out[o + 3u] = loss;
    out[o + 4u] = xc;
    out[o + 5u] = xr;
    out[o + 6u] = select(0.0, 1.0, reward_c > reward_r);
    out[o + 7u] = aux0;
    out[o + 8u] = aux1;
    out[o + 9u] = logp_c;
    out[o + 10u] = len.x;
}

// Ranking accuracy (Chen et al.): per pair [logπ(yw) ≥ logπ(yl), same on per-token averages],
// written as two columns for `column_sums`.
@compute @workgroup_size(256)
fn ranking(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let len = lens[min(i, arrayLength(&lens) - 1u)];
    let raw = diff2(pc[i], pr[i]) >= 0.0;
    let normalized = val2(pc[i]) / max(len.x, 1.0) >= val2(pr[i]) / max(len.y, 1.0);
    out[2u * i] = select(0.0, 1.0, raw);
    out[2u * i + 1u] = select(0.0, 1.0, normalized);
}

// Diffusion-DPO (KIND_DIFFUSION_DPO) and MaPO (KIND_MAPO) per sampled row: pc, pr, rc, rr carry the model's
// and the reference's denoising errors on the chosen and rejected images. Writes 8 columns:
// chosen reward, rejected reward, margin, loss, accuracy, raw model loss, raw reference loss,
// MaPO's ratio term.
@compute @workgroup_size(256)
fn diffusion_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let o = i * 8u;
    let mw = pc[i];
    let ml = pr[i];
    if (p.kind == KIND_DIFFUSION_DPO) {
        let rw = rc[i];
        let rl = rr[i];
        let scale = -0.5 * p.beta;
        let inside = scale * (diff2(mw, ml) - diff2(rw, rl));
        out[o] = scale * diff2(mw, rw);
        out[o + 1u] = scale * diff2(ml, rl);
        out[o + 2u] = inside;
        out[o + 3u] = -log_sigmoid(inside);
        out[o + 4u] = select(0.0, 1.0, inside > 0.0);
        out[o + 5u] = 0.5 * (val2(mw) + val2(ml));
        out[o + 6u] = 0.5 * (val2(rw) + val2(rl));
        out[o + 7u] = 0.0;
    } else {
        // KIND_MAPO
        let fc = x_over_expm1(p.mapo_s * val2(mw));
        let fr = x_over_expm1(p.mapo_s * val2(ml));
        let margin = odds_difference(p.mapo_s * val2(mw), p.mapo_s * val2(ml), p.mapo_s * diff2(mw, ml));
        let ratio = log_sigmoid(p.mapo_timesteps * margin);
        out[o] = fc;
        out[o + 1u] = fr;
        out[o + 2u] = margin;
        out[o + 3u] = val2(mw) - p.beta * ratio;
        out[o + 4u] = select(0.0, 1.0, margin > 0.0);
        out[o + 5u] = val2(mw);
        out[o + 6u] = 0.0;
        out[o + 7u] = ratio;
    }
    // rc/rr are unused by MaPO but bound for one layout.
    if (p.n == 0xffffffffu) {
        out[0] = rc[0].x + rr[0].x;
    }
}

// x / (e^x − 1), 1 at 0 (MaPO's odds transform), as log(u)/(u − 1) with u = e^x: the
// rounding of u cancels (Kahan), so the result is good to a few ulps even near 0, which
// matters because MaPO multiplies differences of these values by T = 1000.
fn x_over_expm1(x: f32) -> f32 {
    let u = exp(x);
    if (u == 1.0) {
        return 1.0 - 0.5 * x;
    }
    if (u == 0.0) {
        return -x;
    }
    return log(u) / (u - 1.0);
}

// f(a) − f(b) for f = x_over_expm1 with d = a − b known precisely. MaPO multiplies this by
// T = 1000, so for |a|, |b| ≤ 1 it comes from the Bernoulli series f(x) = Σ B_n xⁿ/n! as
// d · Σ c_n (aⁿ − bⁿ)/(a − b), which never subtracts nearly equal numbers.
fn odds_difference(a: f32, b: f32, d: f32) -> f32 {
    if (max(abs(a), abs(b)) > 1.0) {
        return x_over_expm1(a) - x_over_expm1(b);
    }
    // c_n = B_n / n! for n = 1, 2, 4, 6, 8, 10 (odd n > 1 vanish).
    var h = 1.0;     // (aⁿ − bⁿ)/(a − b), starting at n = 1
    var bp = 1.0;    // bⁿ⁻¹
    var sum = -0.5;
    let c = array<f32, 11>(0.0, -0.5, 1.0 / 12.0, 0.0, -1.0 / 720.0, 0.0, 1.0 / 30240.0, 0.0,
                           -1.0 / 1209600.0, 0.0, 1.0 / 47900160.0);
    for (var n = 2u; n <= 10u; n++) {
        bp *= b;
        h = a * h + bp;
        sum += c[n] * h;
    }
    return d * sum;
}
