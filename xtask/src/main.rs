//! `cargo xtask demo | dist | test | bench | fixtures | train-demo`: the project's tasks, in Rust so
//! they run the same on every machine. No dependencies: each task is a sequence of commands.

mod fuzz;
mod python;
mod site;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Crates built for `wasm32-unknown-unknown` as part of `test` (everything the browser loads).
const BROWSER_CRATES: &[&str] =
    &["prefscope-core", "prefscope-gpu", "prefscope-clip", "prefscope-synth", "prefscope-viewer"];

/// RUSTFLAGS of every wasm build (tests, page, benchmarks), identical so that they share their
/// artifacts: warnings are errors (clippy only sees the native cfg), and wasm SIMD is on, which
/// the CPU path's kernels (gemm's matrix products, the vectorised passes around them) use (a browser without
/// WebAssembly SIMD cannot compile the page; only Chromium is tested here).
pub(crate) const WASM_RUSTFLAGS: &str = "-Dwarnings -C target-feature=+simd128";

/// The page's second build: relaxed SIMD as well (the int8 products' dot product), loaded where
/// the browser validates it. Built into its own target folder so that neither build's
/// artifacts are invalidated by the other's flags.
pub(crate) const WASM_RELAXED_RUSTFLAGS: &str = "-Dwarnings -C target-feature=+simd128,+relaxed-simd";

/// The features `cargo xtask test` builds the workspace's tests with.
pub(crate) const TEST_FEATURES: &str = "prefscope-core/zstd,prefscope-synth/train";

/// Crates whose `browser` test suite (wasm-bindgen-test) runs in headless Chromium.
const BROWSER_TESTS: &[&str] = &["prefscope-gpu", "prefscope-clip"];

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// Runs a command in the workspace root, echoing it; fails with its name on a non-zero exit.
pub(crate) fn run(program: &str, args: &[&str]) -> Result {
    run_with(program, args, &[])
}

/// [`run`] with extra environment variables.
pub(crate) fn run_with(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result {
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("$ {}{program} {}", shown.concat(), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

pub(crate) fn cargo(args: &[&str]) -> Result {
    run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()), args)
}

/// The browser build of `crates`, with warnings as errors (clippy only sees the native cfg),
/// in one invocation so that they share one feature resolution and one set of artifacts.
fn cargo_wasm(crates: &[&str]) -> Result {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "--locked", "--target", "wasm32-unknown-unknown"];
    for krate in crates {
        args.extend(["-p", krate]);
    }
    run_with(&program, &args, &[("RUSTFLAGS", WASM_RUSTFLAGS)])
}

/// Installs the wasm target when rustup is there and the target is not.
pub(crate) fn ensure_wasm_target() -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
        .unwrap_or(false);
    if installed {
        Ok(())
    } else {
        run("rustup", &["target", "add", "wasm32-unknown-unknown"])
    }
}

/// The wasm-bindgen version in Cargo.lock (the test runner must match it exactly).
fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    Err("wasm-bindgen is not in Cargo.lock".into())
}

/// Installs wasm-bindgen-cli (which brings wasm-bindgen-test-runner) at the locked version.
pub(crate) fn ensure_wasm_bindgen() -> Result {
    let version = locked_wasm_bindgen()?;
    let installed = Command::new("wasm-bindgen-test-runner")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&version))
        .unwrap_or(false);
    if installed {
        Ok(())
    } else {
        cargo(&["install", "wasm-bindgen-cli", "--version", &version])
    }
}

/// The system pieces the GPU and browser suites need: a Vulkan adapter (Mesa's lavapipe
/// when there is no GPU), Chromium with chromedriver, and Node for the page's end-to-end
/// tests. Installed with apt when missing.
fn ensure_system_packages() -> Result {
    let lavapipe = ["/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", "/usr/share/vulkan/icd.d/lvp_icd.aarch64.json"];
    let have_vulkan = lavapipe.iter().any(|p| Path::new(p).exists()) || std::env::var("VK_DRIVER_FILES").is_ok();
    let have_chrome = Path::new("/usr/bin/chromedriver").exists() || std::env::var("CHROMEDRIVER").is_ok();
    let have_node = Command::new("npm").arg("--version").output().is_ok_and(|o| o.status.success());
    // The page's suites also run in Firefox ESR (WebDriver BiDi) and WebKitGTK (WebKitWebDriver
    // under Xvfb).
    let engines = [
        ("/usr/bin/firefox-esr", "firefox-esr"),
        ("/usr/bin/WebKitWebDriver", "webkit2gtk-driver"),
        ("/usr/bin/Xvfb", "xvfb"),
    ];
    let missing: Vec<&str> =
        engines.iter().filter(|(p, _)| !Path::new(p).exists()).map(|(_, package)| *package).collect();
    if have_vulkan && have_chrome && have_node && missing.is_empty() {
        return Ok(());
    }
    if Command::new("apt-get").arg("--version").output().is_err() {
        return Err("install a Vulkan driver (mesa-vulkan-drivers), chromium, chromium-driver, firefox-esr, webkit2gtk-driver, xvfb, nodejs and npm".into());
    }
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    let (program, prefix): (&str, &[&str]) = if root { ("apt-get", &[]) } else { ("sudo", &["apt-get"]) };
    let with = |args: &[&'static str]| -> Vec<&'static str> { [prefix, args].concat() };
    run(program, &with(&["update", "-qq"]))?;
    let mut packages = vec!["install", "-y", "-qq"];
    if !have_vulkan {
        packages.extend(["mesa-vulkan-drivers", "libvulkan1"]);
    }
    if !have_chrome {
        packages.extend(["chromium", "chromium-driver"]);
    }
    // Only when there is no npm at all: a NodeSource Node.js (npm inside) conflicts with Debian's npm.
    if !have_node {
        packages.extend(["nodejs", "npm"]);
    }
    packages.extend(missing);
    run_with(program, &with(&packages), &[("DEBIAN_FRONTEND", "noninteractive")])
}

/// chromedriver for the browser suites: `$CHROMEDRIVER`, else the Debian package's.
fn chromedriver() -> Result<String> {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if Path::new(&path).exists() {
        Ok(path)
    } else {
        Err(format!("{path} not found: install chromium and chromium-driver (see .ci/run) or set CHROMEDRIVER"))
    }
}

/// Everything a change must pass.
fn test() -> Result {
    ensure_system_packages()?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--all-features", "--locked", "--", "-D", "warnings"])?;
    // The GPU suites run on whatever adapter wgpu finds (Mesa's lavapipe in CI). Every feature
    // but `prefscope-clip/burn-wgpu` (and the `prefscope-gpu/burn` it turns on): that is the
    // benchmark's comparison row, checked by clippy above and run by `cargo xtask bench`, and
    // building burn-wgpu's runtime would cost CI minutes for no product path.
    cargo(&["test", "--workspace", "--features", TEST_FEATURES, "--locked"])?;
    // The Python package (PyO3), its TRL callback and Ray Data stages, against the command.
    python::test()?;
    ensure_wasm_target()?;
    cargo_wasm(BROWSER_CRATES)?;
    ensure_wasm_bindgen()?;
    let driver = chromedriver()?;
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // WebGPU on Chromium's SwiftShader adapter; flags in each crate's webdriver.json. One
    // invocation with prefscope-viewer in it: the same feature resolution as the wasm build above,
    // so the burn and wgpu stack built there is reused rather than built again.
    let mut args = vec!["test", "--locked", "--target", "wasm32-unknown-unknown"];
    for krate in BROWSER_TESTS {
        args.extend(["-p", krate]);
    }
    args.extend(["-p", "prefscope-viewer", "--test", "browser"]);
    let env = [
        ("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner"),
        ("CHROMEDRIVER", &driver),
        ("RUSTFLAGS", WASM_RUSTFLAGS),
        // The towers on SwiftShader take about a minute; the runner's default is 20 s.
        ("WASM_BINDGEN_TEST_TIMEOUT", "600"),
    ];
    run_with(&program, &args, &env)?;
    // A ViT-H/14-sized checkpoint streamed onto WebGPU, in a page of its own (it measures the
    // wasm memory from a fresh start).
    clip_browser_target("big_checkpoint")?;
    // The built page in Chromium, Firefox ESR and WebKitGTK: one release-compiled folder (site.rs
    // says why not the debug build) served to every engine.
    let site = site::build(site::Profile::Tested)?;
    site::end_to_end(&site)
}

/// One browser test target of prefscope-clip (`target`) in headless Chromium on SwiftShader,
/// with the flags the browser suites build with, so their artifacts are shared.
fn clip_browser_target(target: &str) -> Result {
    let driver = chromedriver()?;
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = ["test", "--locked", "--target", "wasm32-unknown-unknown", "-p", "prefscope-clip", "--test", target];
    let args = [&args[..], &["--", "--nocapture"]].concat();
    let env = [
        ("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner"),
        ("CHROMEDRIVER", driver.as_str()),
        ("RUSTFLAGS", WASM_RUSTFLAGS),
        ("WASM_BINDGEN_TEST_TIMEOUT", "1200"),
    ];
    run_with(&program, &args, &env)
}

/// B/32 on WebGPU in headless Chromium (prefscope-clip's `bench_webgpu` target).
fn bench_browser() -> Result {
    ensure_wasm_target()?;
    ensure_wasm_bindgen()?;
    clip_browser_target("bench_webgpu")
}

/// prefscope's page against transformers.js in the same headless Chromium (web/bench/run.mjs),
/// on the release build. `DEVICES=cpu,webgpu` adds the WebGPU row; `THREADS` sets
/// transformers.js's WASM threads (default 1, as prefscope's CPU path); `VIT_H=1` adds a
/// ViT-H/14 in q8 on the CPU path in each engine; then the demo's first ranking in each engine
/// (`PREFSCOPE_ENGINES`).
fn bench_web() -> Result {
    ensure_system_packages()?;
    let site = site::build(site::Profile::Release)?;
    let tjs = ensure_transformersjs()?;
    site::ensure_node_modules()?;
    let vit_h = match std::env::var("VIT_H").is_ok_and(|v| !v.is_empty()) {
        true => ensure_vit_h(&tjs)?.to_str().ok_or("path")?.to_string(),
        false => String::new(),
    };
    let (site, tjs) = (site.to_str().ok_or("path")?.to_string(), tjs.to_str().ok_or("path")?.to_string());
    run_with("node", &["web/bench/run.mjs"], &[("PREFSCOPE_SITE", &site), ("TJS_WORK", &tjs), ("VIT_H", &vit_h)])
}

/// The DPO view on a run of 20 evaluations × 10 000 pairs (web/bench/dpo_run.mjs), on the
/// release build in each engine (`PREFSCOPE_ENGINES`; `STEPS`, `PAIRS` change the run).
fn bench_dpo_web() -> Result {
    ensure_system_packages()?;
    let site = site::build(site::Profile::Release)?;
    site::ensure_node_modules()?;
    run_with("node", &["web/bench/dpo_run.mjs"], &[("PREFSCOPE_SITE", site.to_str().ok_or("path")?)])
}

/// `VIT_H=1 cargo xtask bench-web`'s model: random weights with ViT-H/14's shapes (PickScore's
/// and HPS v2's towers) in transformers' layout (web/bench/random_clip.py, f16, 2 GB), then
/// `prefscope quantize`'s q8 copy (1 GB), in the harness's working folder. Returns the q8 copy.
fn ensure_vit_h(work: &Path) -> Result<PathBuf> {
    let model = work.join("models/vit-h-random");
    let (f16, q8) = (model.join("hf"), model.join("hf-q8"));
    if !f16.join("model.safetensors").exists() {
        let python = root().join(".venv-reference/bin/python");
        if !python.exists() {
            return Err("the random ViT-H needs .venv-reference: run tools/reference-venv.sh".into());
        }
        let path = |p: PathBuf| p.to_str().map(str::to_string).ok_or("path");
        run(
            &path(python)?,
            &[
                &path(root().join("web/bench/random_clip.py"))?,
                &path(root().join("tests/fixtures/clip/vit-h-14-config.json"))?,
                &path(root().join("tests/fixtures/clip/tokenizer.json"))?,
                &path(f16.clone())?,
            ],
        )?;
    }
    if !q8.join("model.safetensors").exists() {
        cargo(&["build", "--locked", "-p", "prefscope-cli"])?;
        let cli = root().join("target/debug/prefscope");
        run(
            cli.to_str().ok_or("path")?,
            &["quantize", "--model", f16.to_str().ok_or("path")?, "--dtype", "q8", "--out", q8.to_str().ok_or("path")?],
        )?;
    }
    Ok(q8)
}

/// The transformers.js harness (docs/DESIGN.md "Reference tools"; `$PREFSCOPE_TJS` moves it)
/// set up in its working folder (`$TJS_WORK`, default ~/.cache/prefscope-tjs) as its README
/// says: npm's transformers.js, ONNX exports of the random B/32 towers and the same weights as
/// safetensors for prefscope. About ten minutes the first time; returns the folder.
fn ensure_transformersjs() -> Result<PathBuf> {
    let source =
        std::env::var("PREFSCOPE_TJS").map(PathBuf::from).unwrap_or_else(|_| root().join("web/bench/transformersjs"));
    if !source.join("run.mjs").exists() {
        return Err(format!(
            "{} has no transformers.js harness: set PREFSCOPE_TJS to its folder (web/bench/transformersjs)",
            source.display()
        ));
    }
    let home = std::env::var("HOME").map_err(|_| "HOME is not set")?;
    let work =
        std::env::var("TJS_WORK").map(PathBuf::from).unwrap_or_else(|_| Path::new(&home).join(".cache/prefscope-tjs"));
    std::fs::create_dir_all(work.join("web")).map_err(|e| format!("{}: {e}", work.display()))?;
    for file in ["run.mjs", "server.py", "web/bench.html", "web/bench.js"] {
        std::fs::copy(source.join(file), work.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    let work_str = work.to_str().ok_or("path")?;
    if !work.join("node_modules/@huggingface/transformers").exists() {
        // --ignore-scripts: onnxruntime-node's postinstall downloads, and the page needs only onnxruntime-web.
        run(
            "npm",
            &[
                "install",
                "--prefix",
                work_str,
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "@huggingface/transformers@4",
                "playwright-core",
            ],
        )?;
    }
    if !work.join("models/clip-b32-random/hf/model.safetensors").exists() {
        let python = root().join(".venv-reference/bin/python");
        if !python.exists() {
            return Err("the ONNX export needs .venv-reference: run tools/reference-venv.sh".into());
        }
        let python = python.to_str().ok_or("path")?.to_string();
        run(&python, &["-m", "pip", "install", "-q", "onnx", "onnxscript", "onnxruntime"])?;
        let tokenizer = root().join("tests/fixtures/clip/tokenizer.json");
        let export = source.join("export_clip.py");
        run_with(
            &python,
            &[export.to_str().ok_or("path")?, "b32"],
            &[("TJS_WORK", work_str), ("TJS_TOKENIZER", tokenizer.to_str().ok_or("path")?)],
        )?;
    }
    let model = work.join("models/clip-b32-random");
    let tokenizer = root().join("tests/fixtures/clip/tokenizer.json");
    // transformers.js's default on WASM: onnxruntime's dynamic int8 quantization of the towers.
    if !model.join("onnx/vision_model_quantized.onnx").exists() {
        let python = root().join(".venv-reference/bin/python");
        let export = source.join("export_clip.py");
        run_with(
            python.to_str().ok_or("path")?,
            &[export.to_str().ok_or("path")?, "quantize", "b32"],
            &[("TJS_WORK", work_str), ("TJS_TOKENIZER", tokenizer.to_str().ok_or("path")?)],
        )?;
    }
    // prefscope's q8 row reads the same weights written by `prefscope quantize`.
    if !model.join("hf-q8/model.safetensors").exists() {
        cargo(&["build", "--locked", "-p", "prefscope-cli"])?;
        let cli = root().join("target/debug/prefscope");
        let (hf, q8) = (model.join("hf"), model.join("hf-q8"));
        run(
            cli.to_str().ok_or("path")?,
            &["quantize", "--model", hf.to_str().ok_or("path")?, "--dtype", "q8", "--out", q8.to_str().ok_or("path")?],
        )?;
    }
    Ok(work)
}

/// Benchmarks with their baselines measured in the same run; prints tables, asserts nothing.
fn bench() -> Result {
    cargo(&["bench", "--locked", "-p", "prefscope-cli", "--bench", "dpo_pairs"])?;
    cargo(&["bench", "--locked", "-p", "prefscope-core", "--bench", "dpo_run"])?;
    cargo(&["bench", "--locked", "-p", "prefscope-gpu", "--features", "testing", "--bench", "kernels"])?;
    // burn-wgpu is the towers' comparison row, built only here.
    cargo(&["bench", "--locked", "-p", "prefscope-clip", "--features", "burn-wgpu", "--bench", "towers"])?;
    python::bench()
}

/// Builds the page (release wasm) and serves it at http://127.0.0.1:8080 until interrupted.
fn demo() -> Result {
    let site = site::build(site::Profile::Release)?;
    site::serve(&site, "127.0.0.1:8080")
}

/// Writes the self-contained static folder (target/dist) and prints the wasm's size.
fn dist() -> Result {
    let site = site::build(site::Profile::Release)?;
    eprintln!("dist: {}", site.display());
    Ok(())
}

/// Trains the demo model from its seed into crates/synth/demo-model (extra arguments go to
/// the trainer: `--seed`, `--contrastive-steps`, `--preference-steps`, `--batch`, `--out`),
/// then refreshes its transformers goldens when the reference venv exists.
fn train_demo(extra: &[String]) -> Result {
    let mut args = vec!["run", "--locked", "--release", "-p", "prefscope-synth", "--features", "train"];
    args.extend(["--bin", "train-demo", "--"]);
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)?;
    // The reference direction that ships beside the weights (the page's first ranking reads it).
    let test =
        ["test", "--locked", "-p", "prefscope-synth", "--features", "train", "--test", "synth", "bundled_direction"];
    run_with(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()), &test, &[("PREFSCOPE_BLESS", "1")])?;
    let python = root().join(".venv-reference/bin/python");
    if python.exists() {
        run(python.to_str().ok_or("path")?, &["tests/fixtures/demo/generate.py"])
    } else {
        eprintln!("(tests/fixtures/demo/expected.json not refreshed: run `cargo xtask fixtures`)");
        Ok(())
    }
}

/// Trains the DPO demo (a caption language model: maximum likelihood, then DPO) from its seed
/// and writes the held-out exports into crates/synth/dpo-demo (extra arguments go to the
/// trainer: `--seed`, `--mle-steps`, `--dpo-steps`, `--early-step`, `--beta`, `--out`, ...).
fn train_dpo_demo(extra: &[String]) -> Result {
    let mut args = vec!["run", "--locked", "--release", "-p", "prefscope-synth", "--features", "train"];
    args.extend(["--bin", "train-dpo-demo", "--"]);
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)
}

/// Regenerates tests/fixtures from the reference implementations (needs PyPI access once).
fn fixtures() -> Result {
    let root = root();
    let venv = root.join(".venv-reference");
    if !venv.join("bin/python").exists() {
        let script = root.join("tools/reference-venv.sh");
        run("bash", &[script.to_str().ok_or("path")?, venv.to_str().ok_or("path")?])?;
    }
    let pip = venv.join("bin/pip");
    let legacy = root.join(".trl028");
    if !legacy.join("trl").exists() {
        run(
            pip.to_str().ok_or("path")?,
            &["install", "-q", "--no-deps", "--target", legacy.to_str().ok_or("path")?, "trl==0.28.0"],
        )?;
    }
    // The image-preprocessing reference: Pillow 12 (its pass order is the one every release
    // before 13 used), beside the venv's own Pillow.
    let pillow = root.join(".pillow12");
    if !pillow.join("PIL").exists() {
        run(
            pip.to_str().ok_or("path")?,
            &["install", "-q", "--no-deps", "--target", pillow.to_str().ok_or("path")?, "pillow==12.3.0"],
        )?;
    }
    let python = venv.join("bin/python");
    let python = python.to_str().ok_or("path")?;
    run(python, &["tests/fixtures/generate.py"])?;
    // Tiny transformers and open_clip models, the CLIP tokenizer and its hard string set.
    run(python, &["tests/fixtures/clip/generate.py"])?;
    // HPS v2-style .pt checkpoints for `prefscope convert` (after generate.py: its images).
    run(python, &["tests/fixtures/clip/hps_pt.py"])?;
    // transformers on the committed demo model.
    run(python, &["tests/fixtures/demo/generate.py"])?;
    // scikit-learn's calibration (calibration.py, strength.py) beside the venv's packages.
    run(pip.to_str().ok_or("path")?, &["install", "-q", "scikit-learn"])?;
    for script in ["tests/fixtures/calibration.py", "tests/fixtures/strength.py", "tests/fixtures/kto_unpaired.py"] {
        run(python, &[script])?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "test" => test(),
        "bench-browser" => bench_browser(),
        "bench-web" => bench_web(),
        "bench-dpo-web" => bench_dpo_web(),
        "bench" => bench(),
        "bench-python" => python::bench(),
        "test-python" => python::test(),
        "demo" => demo(),
        "dist" => dist(),
        "e2e" => ensure_system_packages()
            .and_then(|()| site::build(site::Profile::Tested))
            .and_then(|s| site::end_to_end(&s)),
        "fixtures" => fixtures(),
        "fuzz" => fuzz::fuzz(&std::env::args().skip(2).collect::<Vec<_>>()),
        "train-demo" => train_demo(&std::env::args().skip(2).collect::<Vec<_>>()),
        "train-dpo-demo" => train_dpo_demo(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|test-python|bench|bench-python|bench-browser|bench-web|bench-dpo-web|demo|dist|e2e|fixtures|fuzz|train-demo|train-dpo-demo>"
            );
            eprintln!("  test      fmt, clippy, every workspace test, browser suites and the page's end-to-end tests");
            eprintln!("  bench-browser  B/32 on WebGPU in headless Chromium (image batches 1 and 8, text batch 8)");
            eprintln!("  bench-web the page against transformers.js in headless Chromium (CPU path vs WASM; DEVICES=cpu,webgpu)");
            eprintln!("  bench-dpo-web  the DPO view on a run of 20 evaluations x 10 000 pairs, in each engine");
            eprintln!("  test-python  only the Python package's suite (target/pyenv, pip install ./python, pytest), a part of `test`");
            eprintln!(
                "  bench     benchmarks beside their baselines (numpy when .venv-reference exists), bench-python last"
            );
            eprintln!("  bench-python  prefscope.dpo on a million pairs from Python beside numpy (release build)");
            eprintln!("  demo      builds the page (release wasm) and serves it at http://127.0.0.1:8080");
            eprintln!("  dist      writes the page as a static folder, target/dist, and reports the wasm size");
            eprintln!("  e2e       only the page's browser suites in Chromium, Firefox and WebKitGTK (release-compiled wasm), a part of `test`");
            eprintln!(
                "  fuzz      [--minutes N] [--target NAME] runs the fuzz targets (nightly, cargo-fuzz; installs both)"
            );
            eprintln!("  train-demo  trains the embedded demo model from its seed (about an hour on 2 cores)");
            eprintln!(
                "  fixtures  regenerates tests/fixtures from TRL, torchmetrics, transformers, open_clip (Python venv)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}
