// Softmax and 1-based ranks within groups laid out contiguously (offsets[g]..offsets[g+1]).

struct Params {
    groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> prob: array<f32>;
@group(0) @binding(4) var<storage, read_write> rank: array<u32>;

// One workgroup per group: max, then Σ exp(x − max), then each member's probability and its
// rank (highest first; equal scores ordered by position, as the CPU's stable sort does).
@compute @workgroup_size(256)
fn softmax_ranks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) {
        return;
    }
    let start = offsets[g];
    let end = offsets[g + 1u];
    var m = -F32_MAX;
    for (var i = start + lid; i < end; i += WG) {
        m = max(m, x[i]);
    }
    let gmax = workgroup_reduce(lid, m, 1u);
    var sum = 0.0;
    for (var i = start + lid; i < end; i += WG) {
        sum += exp(x[i] - gmax);
    }
    let total = workgroup_reduce(lid, sum, 0u);
    for (var i = start + lid; i < end; i += WG) {
        let xi = x[i];
        prob[i] = exp(xi - gmax) / total;
        let ki = order_key(xi);
        var better = 0u;
        for (var j = start; j < end; j++) {
            let kj = order_key(x[j]);
            if (kj > ki || (kj == ki && j < i)) {
                better += 1u;
            }
        }
        rank[i] = better + 1u;
    }
}
