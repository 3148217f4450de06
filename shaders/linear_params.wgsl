// The parameters both matrix-product modules (linear.wgsl, linear4.wgsl) take.
struct Params {
    rows: u32,
    k: u32,
    n: u32,
    // 0 none, 1 quick_gelu, 2 exact GELU, 3 residual (y += x·W + b)
    epilogue: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
