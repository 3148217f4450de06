// Annotator groups (EM over a mixture of Bradley–Terry rewards): every pair's terms under
// every group's reward, and the gradients and Hessians they sum to. Twins of
// prefscope_core::groups::{pair_terms, moments}. The margins z·w come from similarity's matmul.

struct Params {
    pairs: u32,
    dim: u32,
    groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// terms: margins (pairs × groups), labels (pairs), pair weights (pairs × groups) → terms.
@group(0) @binding(1) var<storage, read> margins: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> pair_weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> terms_out: array<f32>;
// moments: differences (pairs × dim), terms → (dim + 1) × dim per group.
@group(0) @binding(5) var<storage, read> z: array<f32>;
@group(0) @binding(6) var<storage, read> terms_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> moments_out: array<f32>;

// Per (pair, group): [m, y·log σ(m) + (1 − y)·log σ(−m), c·(σ(m) − y), c·σ(m)·(1 − σ(m))].
@compute @workgroup_size(256)
fn terms(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    if (idx >= p.pairs * p.groups) {
        return;
    }
    let m = margins[idx];
    let y = labels[idx / p.groups];
    let s = sigmoid(m);
    let c = pair_weights[idx];
    let at = idx * 4u;
    terms_out[at] = m;
    terms_out[at + 1u] = y * log_sigmoid(m) + (1.0 - y) * log_sigmoid(-m);
    terms_out[at + 2u] = c * (s - y);
    // σ(m)·σ(−m): 1 − σ(m) would round to 0 for m past about 17.
    terms_out[at + 3u] = c * s * sigmoid(-m);
}

const TILE: u32 = 64u;
const PT: u32 = 16u;
var<workgroup> left: array<array<f32, 64>, 16>;
var<workgroup> right: array<array<f32, 64>, 16>;

// One group's (dim + 1) × dim block per z of the dispatch, in 64×64 tiles of 16×16 threads
// with 4×4 results each; the pairs are staged 16 at a time. Row a < dim: Σ_i h_i·z_ia·z_ib
// for b ≤ a (0 above the diagonal; tiles wholly above it are skipped and stay 0); row dim:
// Σ_i g_i·z_ib, the gradient, from the same loop with g_i in place of h_i·z_ia.
@compute @workgroup_size(16, 16)
fn moments(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let tx = lid3.x;
    let ty = lid3.y;
    let lin = ty * 16u + tx;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let g = wid.z;
    if (col0 > row0 + TILE - 1u) {
        return;
    }
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var i0 = 0u; i0 < p.pairs; i0 += PT) {
        // 256 threads load 16 pairs × 64 features of each side: 4 each, features contiguous.
        for (var l = 0u; l < 4u; l++) {
            let idx = lin + l * 256u;
            let r = idx % TILE;
            let kk = idx / TILE;
            let i = i0 + kk;
            var vl = 0.0;
            var vr = 0.0;
            if (i < p.pairs) {
                let t = (i * p.groups + g) * 4u;
                let a = row0 + r;
                if (a < p.dim) {
                    vl = terms_in[t + 3u] * z[i * p.dim + a];
                } else if (a == p.dim) {
                    vl = terms_in[t + 2u];
                }
                let b = col0 + r;
                if (b < p.dim) {
                    vr = z[i * p.dim + b];
                }
            }
            left[kk][r] = vl;
            right[kk][r] = vr;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < PT; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = left[kk][ty * 4u + i];
                bv[i] = right[kk][tx * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    let block = (p.dim + 1u) * p.dim;
    for (var i = 0u; i < 4u; i++) {
        let a = row0 + ty * 4u + i;
        if (a > p.dim) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let b = col0 + tx * 4u + j;
            if (b < p.dim) {
                moments_out[g * block + a * p.dim + b] = select(acc[i][j], 0.0, b > a && a < p.dim);
            }
        }
    }
}
