// Bitonic sort of four independent f32 columns packed as vec4 (AOT sorts its two margin
// columns as torch.sort does); one dispatch per (k, j) stage.

struct Params {
    n: u32,
    j: u32,
    k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> keys: array<vec4<f32>>;

@compute @workgroup_size(256)
fn bitonic_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    let l = i ^ p.j;
    if (i >= p.n || l <= i) {
        return;
    }
    let a = keys[i];
    let b = keys[l];
    let lo = min(a, b);
    let hi = max(a, b);
    if ((i & p.k) == 0u) {
        keys[i] = lo;
        keys[l] = hi;
    } else {
        keys[i] = hi;
        keys[l] = lo;
    }
}

@group(0) @binding(2) var<storage, read> pc: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> pr: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> rc: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> rr: array<vec2<f32>>;

// AOT's keys per pair, padded with +∞ to the sort's power-of-two length.
@compute @workgroup_size(256)
fn aot_keys(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if (i >= arrayLength(&keys)) {
        return;
    }
    if (i >= p.n) {
        keys[i] = vec4<f32>(F32_MAX);
        return;
    }
    keys[i] = vec4<f32>(diff2(pc[i], pr[i]), diff2(rc[i], rr[i]), diff2(pc[i], rc[i]), diff2(pr[i], rr[i]));
}

