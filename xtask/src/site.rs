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
    /// What the browser suites serve to every engine: `web-tested`, the shipped optimisation
    /// level without whole-program optimisation or wasm-opt's size pass. Not the debug build: WebKitGTK's JavaScriptCore now and then computes nonsense
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

/// Shrinks the release wasm with Binaryen's wasm-opt from npm (Debian's build miscompiles);
/// skipped with a note when npm is missing.
fn wasm_opt(wasm: &Path) -> Result {
    if Command::new("npm").arg("--version").output().map_or(true, |o| !o.status.success()) {
        eprintln!("(npm not found: the wasm is not run through wasm-opt)");
        return Ok(());
    }
    let w = wasm.to_str().ok_or("path")?;
    run(
        "npm",
        &[
            "exec",
            "--yes",
            "--package=binaryen@132",
            "--",
            "wasm-opt",
            "-Oz",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
            w,
            "-o",
            w,
        ],
    )
}

/// Builds the page into target/dist (release) or target/dist-tested; returns the folder.
pub fn build(profile: Profile) -> Result<PathBuf> {
    ensure_wasm_target()?;
    ensure_wasm_bindgen()?;
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "--locked", "--target", "wasm32-unknown-unknown", "-p", "prefscope-viewer"];
    let (dir, out) = match profile {
        Profile::Release => {
            args.extend(["--profile", "web-release"]);
            ("web-release", target_dir().join("dist"))
        }
        Profile::Tested => {
            args.extend(["--profile", "web-tested"]);
            ("web-tested", target_dir().join("dist-tested"))
        }
    };
    run_with(&program, &args, &[("RUSTFLAGS", crate::WASM_RUSTFLAGS)])?;
    let _ = std::fs::remove_dir_all(&out);
    let wasm = target_dir().join("wasm32-unknown-unknown").join(dir).join("prefscope_viewer.wasm");
    let pkg = out.join("pkg");
    run(
        "wasm-bindgen",
        &["--target", "web", "--no-typescript", "--out-dir", pkg.to_str().ok_or("path")?, wasm.to_str().ok_or("path")?],
    )?;
    let bg = pkg.join("prefscope_viewer_bg.wasm");
    if profile == Profile::Release {
        wasm_opt(&bg)?;
    }
    let root = root();
    copy(&root.join("index.html"), &out.join("index.html"))?;
    // The element, the JavaScript API (module and types) and their examples.
    for file in [
        "prefscope-viewer.js",
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
    let raw = std::fs::metadata(&bg).map_err(|e| format!("{}: {e}", bg.display()))?.len();
    let gz = gzip_size(&bg).map_or("?".into(), |g| format!("{:.2} MB", g as f64 / 1e6));
    eprintln!("wasm: {:.2} MB raw, {gz} gzip ({})", raw as f64 / 1e6, bg.display());
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
