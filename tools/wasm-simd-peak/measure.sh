#!/bin/sh
# Builds the module with wasm SIMD (as the page) and with relaxed SIMD as well, and measures
# both in headless Chromium. Needs the web tests' node_modules (cargo xtask test installs them).
set -e
cd "$(dirname "$0")"
RUSTFLAGS="-C target-feature=+simd128" cargo build --release --target wasm32-unknown-unknown
cp target/wasm32-unknown-unknown/release/wasm_simd_peak.wasm target/simd128.wasm
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" cargo build --release --target wasm32-unknown-unknown
cp target/wasm32-unknown-unknown/release/wasm_simd_peak.wasm target/relaxed-simd.wasm
node measure.mjs target/simd128.wasm target/relaxed-simd.wasm
