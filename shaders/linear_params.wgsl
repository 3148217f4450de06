// The parameters both matrix-product modules (linear.wgsl, linear4.wgsl) take.
struct Params {
    rows: u32,
    k: u32,
    n: u32,
    // One of the EPILOGUE_* below (prefscope-core's Epilogue::code).
    epilogue: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const EPILOGUE_NONE: u32 = 0u;
const EPILOGUE_QUICK_GELU: u32 = 1u;
const EPILOGUE_GELU: u32 = 2u;
// y += x·W + b: the residual stream is the output.
const EPILOGUE_RESIDUAL: u32 = 3u;
