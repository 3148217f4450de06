// Which of the page's two wasm builds to load. Both come from the same source: the relaxed one
// also uses WebAssembly's relaxed SIMD (the int8 products' `i32x4.relaxed_dot_i8x16_i7x16_add_s`),
// the baseline only wasm SIMD. An engine without relaxed SIMD rejects a module holding any of
// its instructions, so the relaxed build is loaded only where this probe validates.

// (module (func (result v128) (i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.const 0) (v128.const 0) (v128.const 0))))
const zeros = new Array(16).fill(0);
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x0a, 0x3d, 0x01, 0x3b, 0x00, // code: one body of 59 bytes, no locals
  0xfd, 0x0c, ...zeros, 0xfd, 0x0c, ...zeros, 0xfd, 0x0c, ...zeros, // three v128.const 0
  0xfd, 0x93, 0x02, // i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x113)
  0x0b, // end
]);

/// Whether this engine has relaxed SIMD.
export function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(PROBE);
  } catch {
    return false;
  }
}

/// The wasm to load from the built folder `base`: the relaxed build where the engine has relaxed
/// SIMD, unless `simd` is "baseline" (the load option that forces the baseline build).
export function wasmUrl(base, simd = "auto") {
  if (simd !== "auto" && simd !== "baseline") throw new Error(`simd must be "auto" or "baseline", got ${JSON.stringify(simd)}`);
  const relaxed = simd !== "baseline" && hasRelaxedSimd();
  return new URL(relaxed ? "pkg/prefscope_viewer_relaxed_bg.wasm" : "pkg/prefscope_viewer_bg.wasm", base);
}
