//! Token ids against CLIPTokenizer (transformers) and open_clip.tokenize on a hard string set.

use prefscope_clip::{ClipTokenizer, Convention};

use crate::common::{fixture_bytes, json};

/// Every case of the hard string set, in both conventions.
pub fn check_ids() {
    let cases = json("tokenizer_cases.json");
    let context = cases["context_length"].as_u64().unwrap() as usize;
    let bytes = fixture_bytes("tokenizer.json");
    for (convention, key) in [(Convention::HuggingFace, "huggingface"), (Convention::OpenClip, "open_clip")] {
        let tok = ClipTokenizer::from_json(&bytes, convention, context).unwrap();
        let mut checked = 0;
        for case in cases["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let expected: Vec<u32> = case[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let got = tok.encode(text).unwrap();
            assert_eq!(got.ids, expected, "{key}: {text:?}");
            assert_eq!(got.truncated, got.ids.len() == context && tok.bpe(text).unwrap().len() + 2 > context);
            let padded = tok.padded(&got);
            assert_eq!(padded.len(), context);
            assert!(padded[got.ids.len()..].iter().all(|&p| p == tok.pad_id()));
            checked += 1;
        }
        assert!(checked >= 20);
    }
}

/// open_clip pads with 0, transformers with end-of-text; non-CLIP tokenizers are refused.
pub fn check_padding_and_errors() {
    let bytes = fixture_bytes("tokenizer.json");
    let hf = ClipTokenizer::from_json(&bytes, Convention::HuggingFace, 77).unwrap();
    let oc = ClipTokenizer::from_json(&bytes, Convention::OpenClip, 77).unwrap();
    assert_eq!((hf.pad_id(), oc.pad_id()), (49407, 0));
    assert!(ClipTokenizer::from_json(b"{}", Convention::HuggingFace, 77).is_err());
    assert!(ClipTokenizer::from_json(&bytes, Convention::HuggingFace, 1).is_err());
}
