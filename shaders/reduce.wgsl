// Column sums of a row-major table (rows × stride): each workgroup sums 1024 rows into one
// partial per column; the host adds the partials in f64.

struct Params {
    rows: u32,
    stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

const ROWS_PER_GROUP: u32 = 1024u;

@compute @workgroup_size(256)
fn column_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    let first = g * ROWS_PER_GROUP;
    if (first >= p.rows) {
        return;
    }
    for (var col = 0u; col < p.stride; col++) {
        var s = 0.0;
        for (var k = 0u; k < ROWS_PER_GROUP / WG; k++) {
            let row = first + k * WG + lid;
            if (row < p.rows) {
                s += x[row * p.stride + col];
            }
        }
        let total = workgroup_reduce(lid, s, 0u);
        if (lid == 0u) {
            partials[g * p.stride + col] = total;
        }
    }
}
