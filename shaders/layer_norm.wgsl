// LayerNorm over rows, statistics in f32 (two passes: mean, then the biased variance of the
// deviations, as torch). One invocation per row: no workgroup barriers, which software
// adapters pay for dearly, and rows are many (batch·tokens). Optionally gathers its input rows
// through an index (the pooled tokens), so pooling and the final LayerNorm are one dispatch.

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

@compute @workgroup_size(64)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let row = group_index(wid, nwg) * 64u + lid;
    if (row >= p.rows) {
        return;
    }
    var src = row;
    if (p.gather == 1u) {
        src = index[row];
    }
    let base = src * p.width;
    var s = 0.0;
    for (var c = 0u; c < p.width; c++) {
        s += x[base + c];
    }
    let mean = s / f32(p.width);
    var q = 0.0;
    for (var c = 0u; c < p.width; c++) {
        let d = x[base + c] - mean;
        q += d * d;
    }
    let inv = inverseSqrt(q / f32(p.width) + p.eps);
    let out = row * p.width;
    for (var c = 0u; c < p.width; c++) {
        y[out + c] = (x[base + c] - mean) * inv * gamma[c] + beta[c];
    }
}
