//! The page: building the static folder (wasm-bindgen output, loader, styles, demo model and
//! bundled data), serving it, and driving it in headless Chromium for the end-to-end tests.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, ensure_wasm_bindgen, ensure_wasm_target, root, run, run_with, Result};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `web-release`: what `demo` and `dist` ship.
    Release,
    /// What the browser suites serve to every engine: `web-release` code without wasm-opt's
    /// size pass. Not the debug build: WebKitGTK's JavaScriptCore now and then computes nonsense
    /// in the debug build's wasm (a bounds check fails in plain Rust code, a load falls outside
    /// memory) where V8 and SpiderMonkey run it correctly, and the page users get is this code.
    Tested,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn copy(from: &Path, to: &Path) -> Result {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copy {} → {}: {e}", from.display(), to.display()))
}

fn gzip_size(path: &Path) -> Option<u64> {
    let out = Command::new("gzip").args(["-9", "-c"]).arg(path).output().ok()?;
    out.status.success().then_some(out.stdout.len() as u64)
}

/// The WebAssembly features every build uses, as wasm-opt names them (relaxed SIMD is not one:
/// the baseline build must not hold it).
const FEATURES: [&str; 7] = [
    "--enable-simd",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Binaryen's wasm-opt from npm (Debian's build miscompiles) on `wasm` with `args`.
fn wasm_opt(wasm: &Path, args: &[&str], relaxed: bool) -> Result {
    let w = wasm.to_str().ok_or("path")?;
    let mut all = vec!["exec", "--yes", "--package=binaryen@132", "--", "wasm-opt", "--mvp-features"];
    all.extend(FEATURES);
    if relaxed {
        all.push("--enable-relaxed-simd");
    }
    all.extend(args);
    all.push(w);
    run("npm", &all)
}

/// Whether V8 (Node's) validates `wasm` with relaxed SIMD turned off: what an engine without
/// relaxed SIMD does with the module (Binaryen's wasm-opt reads relaxed instructions whatever
/// features it is given, so it cannot tell).
fn validates_without_relaxed_simd(wasm: &Path) -> Result<bool> {
    let script = "process.exit(WebAssembly.validate(require('fs').readFileSync(process.argv[1])) ? 0 : 3)";
    let out = Command::new("node")
        .args(["--no-experimental-wasm-relaxed-simd", "-e", script, wasm.to_str().ok_or("path")?])
        .output()
        .map_err(|e| format!("node: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(3) => Ok(false),
        _ => Err(format!(
            "node cannot validate {} without relaxed SIMD: {}",
            wasm.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The CI check that the baseline build holds no relaxed-SIMD instruction (Safari, and any
/// engine without relaxed SIMD, rejects the whole module), with the relaxed build as the
/// control that the check can fail.
fn check_builds(baseline: &Path, relaxed: &Path) -> Result {
    if Command::new("node").arg("--version").output().map_or(true, |o| !o.status.success()) {
        eprintln!("(node not found: the wasm builds' features are not checked)");
        return Ok(());
    }
    if !validates_without_relaxed_simd(baseline)? {
        return Err(format!(
            "{} holds relaxed-SIMD instructions: browsers without relaxed SIMD would reject the page",
            baseline.display()
        ));
    }
    if validates_without_relaxed_simd(relaxed)? {
        return Err(format!(
            "{} validates without relaxed SIMD: it holds none of its instructions (the int8 kernel's \
             relaxed dot product is missing), or this Node no longer turns relaxed SIMD off",
            relaxed.display()
        ));
    }
    eprintln!("wasm builds: the baseline holds no relaxed-SIMD instruction; the relaxed build does");
    Ok(())
}

/// wasm-bindgen's output for the viewer built into `target` with `rustflags` (profile `dir`),
/// written to `pkg`.
fn build_viewer(target: &Path, dir: &str, rustflags: &str, pkg: &Path) -> Result {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_str = target.to_str().ok_or("path")?;
    let args = [
        "build",
        "--locked",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "prefscope-viewer",
        "--profile",
        dir,
        "--target-dir",
        target_str,
    ];
    run_with(&program, &args, &[("RUSTFLAGS", rustflags)])?;
    let wasm = target.join("wasm32-unknown-unknown").join(dir).join("prefscope_viewer.wasm");
    run(
        "wasm-bindgen",
        &["--target", "web", "--no-typescript", "--out-dir", pkg.to_str().ok_or("path")?, wasm.to_str().ok_or("path")?],
    )
}

/// Builds the page into target/dist (release) or target/dist-tested; returns the folder. Two
/// builds of the wasm share one JavaScript binding: `pkg/prefscope_viewer_bg.wasm` (wasm SIMD)
/// and `pkg/prefscope_viewer_relaxed_bg.wasm` (relaxed SIMD too), which the loader
/// (`web/wasm-build.js`) picks where the browser validates it.
pub fn build(profile: Profile) -> Result<PathBuf> {
    ensure_wasm_target()?;
    ensure_wasm_bindgen()?;
    let (dir, out) = match profile {
        Profile::Release => ("web-release", target_dir().join("dist")),
        Profile::Tested => ("web-release", target_dir().join("dist-tested")),
    };
    let _ = std::fs::remove_dir_all(&out);
    let pkg = out.join("pkg");
    build_viewer(&target_dir(), dir, crate::WASM_RUSTFLAGS, &pkg)?;
    let relaxed_pkg = target_dir().join("relaxed-pkg");
    let _ = std::fs::remove_dir_all(&relaxed_pkg);
    build_viewer(&target_dir().join("relaxed"), dir, crate::WASM_RELAXED_RUSTFLAGS, &relaxed_pkg)?;
    // One binding for both modules: their imports and exports must be the same.
    let binding = |p: &Path| std::fs::read(p.join("prefscope_viewer.js")).map_err(|e| format!("{}: {e}", p.display()));
    if binding(&pkg)? != binding(&relaxed_pkg)? {
        return Err("the two wasm builds need different JavaScript bindings (wasm-bindgen's output differs)".into());
    }
    let bg = pkg.join("prefscope_viewer_bg.wasm");
    let relaxed_bg = pkg.join("prefscope_viewer_relaxed_bg.wasm");
    copy(&relaxed_pkg.join("prefscope_viewer_bg.wasm"), &relaxed_bg)?;
    check_builds(&bg, &relaxed_bg)?;
    let npm = Command::new("npm").arg("--version").output().is_ok_and(|o| o.status.success());
    if profile == Profile::Release && !npm {
        eprintln!("(npm not found: the wasm is not run through wasm-opt)");
    } else if profile == Profile::Release {
        wasm_opt(&bg, &["-Oz", "-o", bg.to_str().ok_or("path")?], false)?;
        wasm_opt(&relaxed_bg, &["-Oz", "-o", relaxed_bg.to_str().ok_or("path")?], true)?;
    }
    let root = root();
    copy(&root.join("index.html"), &out.join("index.html"))?;
    // The element, the JavaScript API (module and types) and their examples.
    for file in [
        "prefscope-viewer.js",
        "wasm-build.js",
        "prefscope.css",
        "prefscope.js",
        "prefscope-worker.js",
        "prefscope.d.ts",
        "examples/index.html",
        "examples/api.html",
        "examples/api-example.js",
        "examples/api-worker.js",
        // prefscope's side of `cargo xtask bench-web`.
        "bench/index.html",
    ] {
        copy(&root.join("web").join(file), &out.join(file))?;
    }
    for file in ["config.json", "preprocessor_config.json", "model.safetensors", "tokenizer.json"] {
        copy(&root.join("crates/synth/demo-model").join(file), &out.join("demo-model").join(file))?;
    }
    // The DPO demo run (cargo xtask train-dpo-demo): the DPO view's default data and its early checkpoint.
    copy(&root.join("crates/synth/dpo-demo/heldout.jsonl"), &out.join("data/dpo_demo.jsonl"))?;
    copy(&root.join("crates/synth/dpo-demo/heldout_early.jsonl"), &out.join("data/dpo_demo_early.jsonl"))?;
    // Every checkpoint of the run, named by its step: what the DPO view opens on (the early
    // export is step 10, the final one step 300, the others are in run/).
    let run = out.join("data/dpo_demo_run");
    copy(&root.join("crates/synth/dpo-demo/heldout_early.jsonl"), &run.join("eval-10.jsonl"))?;
    copy(&root.join("crates/synth/dpo-demo/heldout.jsonl"), &run.join("eval-300.jsonl"))?;
    for step in [50, 100, 150, 200, 250] {
        let name = format!("eval-{step}.jsonl");
        copy(&root.join("crates/synth/dpo-demo/run").join(&name), &run.join(&name))?;
    }
    for wasm in [&bg, &relaxed_bg] {
        let raw = std::fs::metadata(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?.len();
        let gz = gzip_size(wasm).map_or("?".into(), |g| format!("{:.2} MB", g as f64 / 1e6));
        eprintln!("wasm: {:.2} MB raw, {gz} gzip ({})", raw as f64 / 1e6, wasm.display());
    }
    Ok(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "jsonl" => "application/x-ndjson",
        "csv" => "text/csv",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

fn respond(root: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream.try_clone()?);
    reader.read_line(&mut line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let safe = !path.split('/').any(|c| c == "..");
    let mut file = root.join(path.trim_start_matches('/'));
    if file.is_dir() {
        file = file.join("index.html");
    }
    let (status, body, kind) = match (method, safe, std::fs::read(&file)) {
        ("GET" | "HEAD", true, Ok(body)) => ("200 OK", body, content_type(&file)),
        ("GET" | "HEAD", _, _) => ("404 Not Found", b"not found".to_vec(), "text/plain"),
        _ => ("405 Method Not Allowed", b"GET only".to_vec(), "text/plain"),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(&body)?;
    }
    stream.flush()
}

/// Serves `dir` at `address` until interrupted (a thread per connection; static files only).
pub fn serve(dir: &Path, address: &str) -> Result {
    let listener = TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
    eprintln!("prefscope: serving {} at http://{address}/ (Ctrl-C stops)", dir.display());
    for stream in listener.incoming().flatten() {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let _ = respond(&dir, stream);
        });
    }
    Ok(())
}

/// The browser drivers and axe-core from npm in web/node_modules (web/package.json).
pub fn ensure_node_modules() -> Result {
    let web = root().join("web");
    // The drivers (playwright-core: Chromium; puppeteer-core: Firefox over BiDi) and axe-core.
    if ["playwright-core", "puppeteer-core", "axe-core"].iter().any(|p| !web.join("node_modules").join(p).exists()) {
        run("npm", &["ci", "--prefix", web.to_str().ok_or("path")?, "--no-audit", "--no-fund"])?;
    }
    Ok(())
}

/// The page's browser suites (web/tests/*.test.mjs) on the built folder in Chromium, Firefox ESR
/// and WebKitGTK, one engine after another (web/tests/browsers.mjs). Screenshots land in target/e2e.
pub fn end_to_end(site: &Path) -> Result {
    ensure_node_modules()?;
    // The native CLI gives the numbers the page must show. Built with the workspace test
    // step's flags, so it is the binary that step already built (other features would
    // rebuild burn).
    cargo(&["build", "--workspace", "--features", crate::TEST_FEATURES, "--locked", "--bins"])?;
    let cli = target_dir().join("debug/prefscope");
    let shots = target_dir().join("e2e");
    let env = [
        ("PREFSCOPE_SITE", site.to_str().ok_or("path")?),
        ("PREFSCOPE_CLI", cli.to_str().ok_or("path")?),
        ("PREFSCOPE_SHOTS", shots.to_str().ok_or("path")?),
    ];
    run_with("node", &["--test", "--test-concurrency=1", "web/tests/"], &env)
}
