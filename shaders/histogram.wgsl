// numpy-style histograms with atomics: values and edges travel as (hi, lo) f32 pairs, so bin
// membership is decided on the exact f64 comparison the CPU twin makes.

struct Params {
    n: u32,
    bins: u32,
    // f32 guess of the bin: k ≈ (v − lo) · norm.
    lo: f32,
    norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> edges: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

fn ge(a: vec2<f32>, b: vec2<f32>) -> bool {
    let d = a.x - b.x;
    if (d != 0.0) {
        return d > 0.0;
    }
    return a.y >= b.y;
}

fn finite(x: f32) -> bool {
    return abs(x) <= F32_MAX;
}

@compute @workgroup_size(256)
fn histogram(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let v = values[i];
    // Outside [lo, hi] or not finite: skipped, as numpy does.
    if (!finite(v.x) || !ge(v, edges[0]) || !ge(edges[p.bins], v)) {
        return;
    }
    var k = u32(clamp(floor((v.x - p.lo) * p.norm), 0.0, f32(p.bins - 1u)));
    // Step to the bin whose half-open range holds v (the last bin is closed).
    loop {
        if (k > 0u && !ge(v, edges[k])) {
            k -= 1u;
        } else if (k + 1u < p.bins && ge(v, edges[k + 1u])) {
            k += 1u;
        } else {
            break;
        }
    }
    atomicAdd(&counts[k], 1u);
}

// Per-workgroup min and max of the finite values (hi parts; the host refines with the data).
@compute @workgroup_size(256)
fn minmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    let i = g * WG + lid;
    var lo = F32_MAX;
    var hi = -F32_MAX;
    if (i < p.n) {
        let v = values[i].x;
        if (finite(v)) {
            lo = v;
            hi = v;
        }
    }
    let group_lo = workgroup_reduce(lid, lo, 2u);
    let group_hi = workgroup_reduce(lid, hi, 1u);
    if (lid == 0u) {
        partials[2u * g] = group_lo;
        partials[2u * g + 1u] = group_hi;
    }
}
