// Per-token implicit rewards β(logπ_t − logπref_t) and segmented sums over the compressed-row
// token layout: one workgroup per sequence.

struct Params {
    segments: u32,
    beta: f32,
    // 1: rewards from policy and reference; 0: plain sums of `policy`.
    rewards: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read> policy: array<f32>;
@group(0) @binding(3) var<storage, read> reference: array<f32>;
@group(0) @binding(4) var<storage, read_write> per_token: array<f32>;
@group(0) @binding(5) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(256)
fn segments(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let s = group_index(wid, nwg);
    if (s >= p.segments) {
        return;
    }
    let start = offsets[s];
    let end = offsets[s + 1u];
    var acc = 0.0;
    for (var t = start + lid; t < end; t += WG) {
        var v = policy[t];
        if (p.rewards == 1u) {
            v = p.beta * (v - reference[t]);
            per_token[t] = v;
        }
        acc += v;
    }
    let total = workgroup_reduce(lid, acc, 0u);
    if (lid == 0u) {
        sums[s] = total;
    }
}
