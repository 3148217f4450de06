//! The demo model's tokenizer.json: CLIP's byte-level BPE format (the same normaliser,
//! pre-tokeniser, `</w>` suffix and start/end tokens as openai/clip-vit-base-patch32's), over
//! a vocabulary of the 256 bytes, the shapes-world words and the merges that build them, so
//! every template word is one token and any other text still tokenises (byte by byte).

use serde_json::{json, Map, Value};

/// GPT-2's reversible byte → printable character table, in CLIP's vocabulary order.
fn byte_alphabet() -> Vec<char> {
    let mut bytes: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars: Vec<u32> = bytes.clone();
    let mut extra = 0;
    for b in 0..256 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    chars.into_iter().map(|c| char::from_u32(c).expect("valid code point")).collect()
}

/// Applies `merges` by rank to one word (as tokenizers' BPE does): the pieces it ends as.
fn bpe(word: &str, merges: &[(String, String)]) -> Vec<String> {
    let mut pieces: Vec<String> = word.chars().map(String::from).collect();
    if let Some(last) = pieces.last_mut() {
        last.push_str("</w>");
    }
    loop {
        let best = (0..pieces.len().saturating_sub(1))
            .filter_map(|i| merges.iter().position(|(a, b)| *a == pieces[i] && *b == pieces[i + 1]).map(|r| (r, i)))
            .min();
        let Some((_, i)) = best else { return pieces };
        let right = pieces.remove(i + 1);
        pieces[i].push_str(&right);
    }
}

/// Merges under which every word of `words` (lowercase ASCII) is a single token. Each round
/// appends, for every word still in pieces, the merge of its first two pieces; appended merges
/// rank last, so words already whole stay whole.
pub fn merges_for(words: &[&str]) -> Vec<(String, String)> {
    let mut merges: Vec<(String, String)> = Vec::new();
    loop {
        let mut added = false;
        for word in words {
            let pieces = bpe(word, &merges);
            if pieces.len() > 1 {
                let merge = (pieces[0].clone(), pieces[1].clone());
                if !merges.contains(&merge) {
                    merges.push(merge);
                    added = true;
                }
            }
        }
        if !added {
            return merges;
        }
    }
}

/// The tokenizer.json text for `words`, with start and end of text last.
pub fn tokenizer_json(words: &[&str]) -> Value {
    let alphabet = byte_alphabet();
    let mut tokens: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
    tokens.extend(alphabet.iter().map(|c| format!("{c}</w>")));
    let merges = merges_for(words);
    tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
    let start = tokens.len();
    tokens.push("<|startoftext|>".into());
    tokens.push("<|endoftext|>".into());
    let mut vocab = Map::new();
    for (id, token) in tokens.iter().enumerate() {
        vocab.insert(token.clone(), json!(id));
    }
    let special = |id: usize, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
               "normalized": false, "special": true})
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(start, "<|startoftext|>"), special(start + 1, "<|endoftext|>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", start + 1],
                           "cls": ["<|startoftext|>", start], "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "",
                  "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()}
    })
}
