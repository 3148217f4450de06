// LongAlign: the split of every image×text score into text-relevant and text-irrelevant parts,
// and the rows a manifest scores.

struct Params {
    rows: u32,
    cols: u32,
    dim: u32,
    // 1: a score clamps at 0 (pick_rows; CLIPScore's convention).
    clamp: u32,
    scale: f32,
    weight: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// out[r] = x[r, :] · y (row-vector products with the common direction).
@compute @workgroup_size(256)
fn dot_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let r = group_index(wid, nwg);
    if (r >= p.rows) {
        return;
    }
    var s = 0.0;
    for (var k = lid; k < p.dim; k += WG) {
        s += x[r * p.dim + k] * y[k];
    }
    let total = workgroup_reduce(lid, s, 0u);
    if (lid == 0u) {
        out[r] = total;
    }
}

// x: image·text products (rows × cols); y: [u·image (rows), text·u (cols)].
// out: [relevant (rows × cols), irrelevant (rows × cols)] in score units.
@compute @workgroup_size(256)
fn split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    let n = p.rows * p.cols;
    if (idx >= n) {
        return;
    }
    let i = idx / p.cols;
    let j = idx % p.cols;
    let irrelevant = y[p.rows + j] * y[i];
    out[idx] = (x[idx] - irrelevant) * p.scale;
    out[n + idx] = irrelevant * p.scale;
}

// x: [relevant, irrelevant] as split writes them; out = relevant + weight · irrelevant.
@compute @workgroup_size(256)
fn reweight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    let n = p.rows * p.cols;
    if (idx >= n) {
        return;
    }
    out[idx] = x[idx] + p.weight * x[n + idx];
    if (p.dim == 0xffffffffu) {
        out[0] = y[0];
    }
}

// The rows a manifest scores, picked from the products x and the projections y (as `split`
// reads them): picks holds, per row, the product's index, u·image's index and text·u's index
// in y. out: [relevant, irrelevant, score, reweighted] (rows each) in score units; the score
// clamps at 0 when `clamp` is 1 (CLIPScore's convention).
@group(0) @binding(4) var<storage, read> picks: array<u32>;

@compute @workgroup_size(256)
fn pick_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let r = group_index(wid, nwg) * WG + lid;
    let m = p.rows;
    if (r >= m) {
        return;
    }
    let irrelevant = y[picks[3u * r + 1u]] * y[picks[3u * r + 2u]];
    let relevant = (x[picks[3u * r]] - irrelevant) * p.scale;
    let scaled = irrelevant * p.scale;
    var score = relevant + scaled;
    if (p.clamp == 1u) {
        score = max(score, 0.0);
    }
    out[r] = relevant;
    out[m + r] = scaled;
    out[2u * m + r] = score;
    out[3u * m + r] = relevant + p.weight * scaled;
}
