//! Replays the committed fuzz seeds and corpus (fuzz/seeds, fuzz/corpus) and every crash found so far
//! (fuzz/regressions/<target>/) through the fuzz targets' bodies, on stable and in seconds:
//! CI's share of the fuzzing, which `cargo xtask fuzz` does on nightly.

#[path = "../../../fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut count = 0;
    for dir in ["seeds", "corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no seeds nor corpus for {target}");
}

#[test]
fn checkpoint() {
    replay("checkpoint", targets::checkpoint);
}

#[test]
fn tokenizer() {
    replay("tokenizer", targets::tokenizer);
}

#[test]
fn segments() {
    replay("segments", targets::segments);
}

#[test]
fn dpo() {
    replay("dpo", targets::dpo);
}

#[test]
fn pairs() {
    replay("pairs", targets::pairs);
}

#[test]
fn manifest() {
    replay("manifest", targets::manifest);
}

#[test]
fn image() {
    replay("image", targets::image);
}

/// The seeds (fuzz/seeds, which `cargo xtask fuzz` starts every target from besides its
/// corpus) are the test fixtures in each target's input format: small valid files, so that
/// fuzzing starts from inputs that get deep. This checks the committed seeds are what the
/// fixtures give; `PREFSCOPE_BLESS=1` writes them.
#[test]
fn seeds_are_the_fixtures_current_forms() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BinaryArray, Float64Array, RecordBatch, StringArray};
    use serde_json::Value;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixtures = root.join("tests/fixtures");
    let seeds = root.join("fuzz/seeds");
    let bless = std::env::var("PREFSCOPE_BLESS").is_ok_and(|v| v == "1");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let path = seeds.join(target).join(name);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(committed == bytes, "{} is stale: PREFSCOPE_BLESS=1 rewrites it", path.display());
        }
    };
    let tagged = |tag: u8, bytes: &[u8]| [&[tag][..], bytes].concat();
    let parquet = |columns: Vec<(&str, ArrayRef)>| {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut out = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        out
    };

    // checkpoint: each fixture model's config and safetensors header, data as zeros.
    for (model, layout, config, weights) in [
        ("hf-quickgelu-f32", 0u8, "config.json", "model.safetensors"),
        ("hf-gelu-f16-legacy", 0, "config.json", "model.safetensors"),
        ("openclip-gelu-bf16", 1, "open_clip_config.json", "open_clip_model.safetensors"),
        ("openclip-quickgelu-f32", 1, "open_clip_config.json", "open_clip_model.safetensors"),
    ] {
        let dir = fixtures.join("clip").join(model);
        let config = std::fs::read(dir.join(config)).unwrap();
        let st = std::fs::read(dir.join(weights)).unwrap();
        let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
        let data = (st.len() - 8 - n) as u32;
        let input = [&[layout][..], &config, &[0], &st[8..8 + n], &[0], &data.to_le_bytes()].concat();
        write("checkpoint", model, &input);
    }

    // tokenizer and segments: the tokenizer cases' texts; a broken tokenizer.json.
    let cases: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("clip/tokenizer_cases.json")).unwrap()).unwrap();
    let texts: Vec<String> =
        cases["cases"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap().to_string()).collect();
    for (i, text) in texts.iter().enumerate() {
        write("tokenizer", &format!("text-{i}"), &tagged(0, text.as_bytes()));
    }
    write("tokenizer", "json-minimal", &tagged(1, br#"{"model": {"type": "BPE", "vocab": {"<|startoftext|>": 0}}}"#));
    write("segments", "joined", texts.join(". ").as_bytes());
    write("segments", "long", "a red circle, left of a blue square; ".repeat(40).as_bytes());

    // dpo: the bundled sample's first rows in JSON Lines, CSV and Parquet; Diffusion-DPO rows.
    let sample = std::fs::read_to_string(fixtures.join("dpo_sample.jsonl")).unwrap();
    let rows: Vec<Value> = sample.lines().take(3).map(|l| serde_json::from_str(l).unwrap()).collect();
    let jsonl: String = sample.lines().take(3).map(|l| format!("{l}\n")).collect();
    write("dpo", "sample-jsonl", &tagged(0, jsonl.as_bytes()));
    let columns =
        ["policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps"];
    let mut csv = format!("id,{}\n", columns.join(","));
    for r in &rows {
        let values: Vec<String> = columns.iter().map(|c| r[c].to_string()).collect();
        csv += &format!("{},{}\n", r["id"].as_str().unwrap(), values.join(","));
    }
    write("dpo", "sample-csv", &tagged(1, csv.as_bytes()));
    let mut cols: Vec<(&str, ArrayRef)> =
        vec![("id", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r["id"].as_str().unwrap()))))];
    for c in columns {
        cols.push((c, Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r[c].as_f64().unwrap())))));
    }
    write("dpo", "sample-parquet", &tagged(2, &parquet(cols)));
    let diffusion =
        "id,model_mse_w,model_mse_l,ref_mse_w,ref_mse_l\np0,0.0858,0.0845,0.0979,0.0734\np1,0.1,0.2,0.15,0.12\n";
    write("dpo", "diffusion-csv", &tagged(1, diffusion.as_bytes()));

    // pairs: paths and inline bytes in JSON Lines; binary image columns in Parquet.
    let png = std::fs::read(fixtures.join("clip/images/square24.png")).unwrap();
    let inline: Vec<String> = png.iter().map(u8::to_string).collect();
    let pairs = format!(
        "{{\"caption\": \"a cat\", \"jpg_0\": \"a.png\", \"jpg_1\": \"b.png\", \"label_0\": 1}}\n\
         {{\"caption\": \"a dog\", \"jpg_0\": [{}], \"jpg_1\": \"b.png\", \"label_0\": 0.5}}\n",
        inline.join(",")
    );
    write("pairs", "jsonl", &tagged(0, pairs.as_bytes()));
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("caption", Arc::new(StringArray::from(vec!["a cat"]))),
        ("jpg_0", Arc::new(BinaryArray::from_vec(vec![&png[..]]))),
        ("jpg_1", Arc::new(BinaryArray::from_vec(vec![&png[..]]))),
        ("label_0", Arc::new(Float64Array::from(vec![0.0]))),
    ];
    write("pairs", "parquet", &tagged(1, &parquet(cols)));

    // manifest: CSV (quoted commas, a group) and JSON Lines.
    write("manifest", "csv", &tagged(0, b"prompt,image,group,id\na cat,cat.png,g1,1\n\"a, dog\",dog.png,,2\n"));
    write("manifest", "jsonl", &tagged(1, b"{\"prompt\": \"a cat\", \"image\": \"cat.png\", \"group\": \"g1\"}\n"));

    // image: the fixture images (PNG, JPEG with EXIF, RGBA, grey).
    for entry in std::fs::read_dir(fixtures.join("clip/images")).unwrap() {
        let path = entry.unwrap().path();
        write("image", path.file_name().unwrap().to_str().unwrap(), &std::fs::read(&path).unwrap());
    }
}
