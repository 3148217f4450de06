#!/usr/bin/env bash
# Builds the probe for wasm both ways, runs wasm-bindgen and npm's binaryen@132 wasm-opt -Oz as
# `cargo xtask dist` does, and prints raw and gzip sizes. About 20 minutes cold on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
out=${CARGO_TARGET_DIR:-target}
for variant in gpu cpu; do
  features=(); [ "$variant" = gpu ] && features=(--features gpu)
  cargo build --release --target wasm32-unknown-unknown "${features[@]}"
  rm -rf "$out/probe-$variant"
  wasm-bindgen --target web --no-typescript --out-dir "$out/probe-$variant" "$out/wasm32-unknown-unknown/release/wasm_size_probe.wasm"
  npm exec --yes --package=binaryen@132 -- wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$out/probe-$variant/wasm_size_probe_bg.wasm" -o "$out/probe-$variant/opt.wasm"
  echo "$variant: $(stat -c %s "$out/probe-$variant/opt.wasm") bytes raw, $(gzip -9 -c "$out/probe-$variant/opt.wasm" | wc -c) gzip"
done
