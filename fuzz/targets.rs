//! The bodies of the fuzz targets: each takes arbitrary bytes and must return (an `Err` is a
//! fine outcome) without panicking, hanging or allocating past its input's worth. The
//! binaries in fuzz_targets/ hand them to libFuzzer (`cargo xtask fuzz`); the workspace test
//! `crates/cli/tests/fuzz_corpus.rs` replays the committed corpus through them on stable.
#![allow(dead_code)]

use bytes::Bytes;
use prefscope_clip::tokenizer::{ClipTokenizer, Convention};
use prefscope_clip::{Backend, Encoder, ImageLimits, ModelFiles, Rgba};
use prefscope_core::io::read::{read_manifest, read_pairs, read_preferences, Format, Input, Preferences};
use prefscope_core::preference::report::{report, ReportRequest};
use prefscope_core::scoring::longalign::split_segments;
use prefscope_core::scoring::preprocess::{preprocess, Preset};

/// CLIP's tokenizer.json, as the fixture models use it.
pub const TOKENIZER: &[u8] = include_bytes!("../tests/fixtures/clip/tokenizer.json");

/// Largest tensor-data section a checkpoint input is given (zeros).
const MAX_DATA: usize = 4 << 20;

/// `[layout][config JSON] 0 [safetensors header JSON] 0 [data length, u32 LE]`: a model
/// directory whose config and checkpoint header come from the input and whose tensor data is
/// zeros of the given length. Loaded on the CPU, then one text and one image are embedded.
pub fn checkpoint(data: &[u8]) {
    let Some((&layout, rest)) = data.split_first() else { return };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let (Some(config), Some(header), Some(len)) = (parts.next(), parts.next(), parts.next()) else { return };
    let len = len.iter().take(4).enumerate().fold(0usize, |a, (i, &b)| a | (b as usize) << (8 * i)).min(MAX_DATA);
    let mut weights = (header.len() as u64).to_le_bytes().to_vec();
    weights.extend_from_slice(header);
    weights.resize(weights.len() + len, 0);
    let (config_name, weights_name) = if layout % 2 == 0 {
        ("config.json", "model.safetensors")
    } else {
        ("open_clip_config.json", "open_clip_model.safetensors")
    };
    let mut files = ModelFiles::new();
    files.insert(config_name, config.to_vec());
    files.insert(weights_name, weights);
    files.insert("tokenizer.json", TOKENIZER.to_vec());
    let Ok(encoder) = Encoder::load(&files, Backend::Cpu) else { return };
    let _ = pollster::block_on(encoder.embed_texts(&["a red circle".to_string()]));
    if let Ok(image) = Rgba::from_raw("fuzz", 8, 8, vec![128; 8 * 8 * 4]) {
        let _ = pollster::block_on(encoder.embed_images(&[image], None));
    }
}

/// `[mode] rest`: mode 0 tokenises `rest` as text in both conventions (and through the
/// LongAlign segmenter); otherwise `rest` is a tokenizer.json.
pub fn tokenizer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode == 0 {
        // Built once: parsing CLIP's tokenizer.json takes longer than tokenising a text.
        static BOTH: std::sync::OnceLock<Vec<ClipTokenizer>> = std::sync::OnceLock::new();
        let both = BOTH.get_or_init(|| {
            [Convention::HuggingFace, Convention::OpenClip]
                .into_iter()
                .map(|c| ClipTokenizer::from_json(TOKENIZER, c, 77).expect("CLIP's tokenizer.json"))
                .collect()
        });
        let text = String::from_utf8_lossy(rest);
        for t in both {
            if let Ok(tokens) = t.encode(&text) {
                assert!(t.padded(&tokens).len() == 77, "padded to the context");
            }
        }
    } else if let Ok(t) = ClipTokenizer::from_json(rest, Convention::HuggingFace, 77) {
        let _ = t.encode("a red circle and a blue square");
    }
}

/// The LongAlign segmenter, as the reference behaves: at least one segment; each a piece of
/// the text with "." added, unless the text itself is the only one (nothing else was left, an
/// empty text included); never more characters than the text and its added full stops.
pub fn segments(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let segments = split_segments(&text);
    assert!(!segments.is_empty(), "no segment from {text:?}");
    if segments != [text.to_string()] {
        assert!(segments.iter().all(|s| s.ends_with('.') && s.len() > 1), "{segments:?} from {text:?}");
    }
    let chars: usize = segments.iter().map(|s| s.len()).sum();
    assert!(chars <= text.len() + segments.len(), "{chars} characters from {} in {text:?}", text.len());
}

fn format(selector: u8) -> (&'static str, Format) {
    match selector % 3 {
        0 => ("input.jsonl", Format::Jsonl),
        1 => ("input.csv", Format::Csv),
        _ => ("input.parquet", Format::Parquet),
    }
}

/// `[format] bytes`: DPO or Diffusion-DPO rows in JSON Lines, CSV or Parquet, then the default
/// report on what was read.
pub fn dpo(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (name, format) = format(selector);
    let input = Input::Bytes { name, bytes: Bytes::copy_from_slice(rest) };
    let whole = read_preferences(input, Some(format), &mut |_| {});
    if format == Format::Parquet {
        // The browser's reader, a row group at a time: the same rows, or an error too.
        let pieces = parquet_in_pieces(rest);
        assert_eq!(
            pieces.is_ok(),
            whole.is_ok(),
            "whole: {:?}, pieces: {:?}",
            whole.as_ref().err(),
            pieces.as_ref().err()
        );
        if let (Ok(a), Ok(b)) = (&whole, &pieces) {
            assert_eq!(a, b, "the same rows");
        }
    }
    if let Ok(prefs) = whole {
        if let Ok(r) = report(&prefs, &ReportRequest::default()) {
            if let Preferences::Dpo(t) = &prefs {
                assert_eq!(r.ids.len(), t.len(), "a pair per row");
            }
        }
    }
}

fn parquet_in_pieces(bytes: &[u8]) -> Result<Preferences, prefscope_core::InputError> {
    use prefscope_core::io::read::ParquetPieces;
    let name = "input.parquet";
    let len = bytes.len() as u64;
    let footer = ParquetPieces::metadata_range(name, len, &bytes[bytes.len().saturating_sub(8)..])?;
    let slice = |r: std::ops::Range<u64>| Bytes::copy_from_slice(&bytes[r.start as usize..r.end as usize]);
    let mut pieces = ParquetPieces::open(name, len, footer.start, slice(footer))?;
    for (i, range) in pieces.row_groups().into_iter().enumerate() {
        pieces.push_row_group(i, range.start, slice(range.clone()), &mut |_| {})?;
    }
    pieces.finish()
}

/// `[format] bytes`: labelled pairs in JSON Lines or Parquet.
pub fn pairs(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let name = if selector % 2 == 0 { "pairs.jsonl" } else { "pairs.parquet" };
    let _ = read_pairs(name, Bytes::copy_from_slice(rest));
}

/// `[format] bytes`: a scoring manifest in CSV or JSON Lines.
pub fn manifest(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let name = if selector % 2 == 0 { "manifest.csv" } else { "manifest.jsonl" };
    if let Ok(rows) = read_manifest(name, rest) {
        assert!(rows.iter().all(|r| !r.prompt.is_empty() && !r.image.is_empty()));
    }
}

/// Any image file, decoded within a one-megapixel limit and preprocessed by both resize rules
/// (at 32 pixels, so that a run is quick).
pub fn image(data: &[u8]) {
    let limits = ImageLimits { max_pixels: 1 << 20 };
    let Ok(image) = Rgba::decode_limited("fuzz", data, &limits) else { return };
    for preset in [Preset::clip(32), Preset::hps(32)] {
        if let Ok(pixels) = preprocess(&image.data, image.width, image.height, &preset) {
            assert_eq!(pixels.data.len(), 3 * pixels.width as usize * pixels.height as usize);
        }
    }
}
