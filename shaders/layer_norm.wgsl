// LayerNorm over rows, statistics in f32 (two passes: mean, then the biased variance of the
// deviations, as torch). Optionally gathers its input rows through an index (the pooled
// tokens), so pooling and the final LayerNorm are one dispatch.

struct Params {
    rows: u32,
    width: u32,
    gather: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// One workgroup per output row.
@compute @workgroup_size(256)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let row = group_index(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    var src = row;
    if (p.gather == 1u) {
        src = index[row];
    }
    let base = src * p.width;
    var s = 0.0;
    for (var c = lid; c < p.width; c += WG) {
        s += x[base + c];
    }
    let mean = workgroup_reduce(lid, s, 0u) / f32(p.width);
    var q = 0.0;
    for (var c = lid; c < p.width; c += WG) {
        let d = x[base + c] - mean;
        q += d * d;
    }
    let inv = inverseSqrt(workgroup_reduce(lid, q, 0u) / f32(p.width) + p.eps);
    let out = row * p.width;
    for (var c = lid; c < p.width; c += WG) {
        y[out + c] = (x[base + c] - mean) * inv * gamma[c] + beta[c];
    }
}
