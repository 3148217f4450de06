// Helpers prepended to every kernel module (crates/gpu/src/kernel.rs `shader!`).

const WG: u32 = 256u;
// The largest finite f32, written exactly (a decimal literal may round past it).
const F32_MAX: f32 = 0x1.fffffep+127f;

// Flat workgroup index of a dispatch folded into two dimensions past 65 535 groups.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// A value sent as f64 split into two f32 (hi + lo): differences of large log-probabilities
// keep the digits a single f32 would lose.
fn diff2(a: vec2<f32>, b: vec2<f32>) -> f32 {
    return (a.x - b.x) + (a.y - b.y);
}

fn val2(a: vec2<f32>) -> f32 {
    return a.x + a.y;
}

// log(1 + e) for e in [0, 1] (Goldberg's trick; WGSL has no log1p).
fn log1p_small(e: f32) -> f32 {
    let u = 1.0 + e;
    if (u == 1.0) {
        return e;
    }
    return log(u) * (e / (u - 1.0));
}

// log σ(x), stable for any finite x.
fn log_sigmoid(x: f32) -> f32 {
    return min(x, 0.0) - log1p_small(exp(-abs(x)));
}

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// exp(x) − 1 with relative accuracy near 0.
fn expm1(x: f32) -> f32 {
    if (abs(x) < 1e-3) {
        return x * (1.0 + x * (0.5 + x / 6.0));
    }
    return exp(x) - 1.0;
}

// log(1 − e^x) for x < 0 (Mächler's split at −ln 2).
fn log1mexp(x: f32) -> f32 {
    if (x > -0.6931472) {
        return log(-expm1(x));
    }
    // log1p(−e^x) by Goldberg's trick; when e^x is below half an ulp of 1 (x < −16.6),
    // u rounds to 1 and the result is −e^x itself (without the guard, 0·∞ = NaN).
    let y = -exp(x);
    let u = 1.0 + y;
    if (u == 1.0) {
        return y;
    }
    return log(u) * (y / (u - 1.0));
}

// erf with absolute error below 1.5e-7 (Abramowitz and Stegun 7.1.26), four at a time (the GELU
// epilogues); WGSL has none.
fn erf4(v: vec4<f32>) -> vec4<f32> {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    return sign(v) * (1.0 - poly * exp(-a * a));
}

// A u32 whose unsigned order is f32's total order (Rust's `total_cmp`).
fn order_key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    if ((b >> 31u) == 1u) {
        return ~b;
    }
    return b | 0x80000000u;
}

var<workgroup> wg_reduce: array<f32, WG>;

// Reduces `v` over the workgroup (op 0: sum, 1: max, 2: min); every invocation gets the
// result. Call from uniform control flow.
fn workgroup_reduce(lid: u32, v: f32, op: u32) -> f32 {
    wg_reduce[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) {
            let a = wg_reduce[lid];
            let b = wg_reduce[lid + s];
            switch op {
                case 1u: { wg_reduce[lid] = max(a, b); }
                case 2u: { wg_reduce[lid] = min(a, b); }
                default: { wg_reduce[lid] = a + b; }
            }
        }
        workgroupBarrier();
    }
    let result = wg_reduce[0];
    workgroupBarrier();
    return result;
}
