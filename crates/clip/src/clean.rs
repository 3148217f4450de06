//! open_clip's text cleaning before BPE (`open_clip.tokenizer._clean_lower`):
//! `ftfy.fix_text`, `html.unescape` twice, whitespace collapsed, lower-cased. Hugging Face's
//! CLIPTokenizer does none of this beyond its normalizer (NFC, whitespace, lower case), so
//! the two libraries give different ids for entities, curly quotes, ligatures and fullwidth
//! forms; prefscope follows the one whose weights it runs.
//!
//! Of ftfy's fixes, those that change well-formed text are reproduced: HTML entities (only
//! when the text has no `<`), Latin ligatures, fullwidth/halfwidth forms, curly quotes,
//! control characters and NFC. Its mojibake repair (text decoded with the wrong codec) is a
//! heuristic over byte patterns that prompts written as Unicode do not hit, and is left out.

use unicode_normalization::UnicodeNormalization;

/// `ftfy.chardata.LIGATURES`: Latin ligatures and digraphs.
fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// `ftfy.fixes.remove_control_chars`: C0 controls except tab, newline, form feed and carriage
/// return; DEL; deprecated format characters; the byte-order mark; interlinear annotations.
fn is_removed_control(c: char) -> bool {
    matches!(c as u32, 0x00..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0x206A..=0x206F | 0xFEFF | 0xFFF9..=0xFFFC)
}

/// The fixes of `ftfy.fix_text` (default configuration) that apply to well-formed text.
pub fn ftfy(text: &str) -> String {
    let text = if text.contains('<') { text.to_string() } else { htmlize::unescape(text).into_owned() };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if let Some(s) = ligature(c) {
            out.push_str(s);
        } else if c == '\u{3000}' {
            out.push(' ');
        } else if ('\u{FF01}'..='\u{FFEF}').contains(&c) {
            // ftfy's WIDTH_MAP: the NFKC form of halfwidth and fullwidth forms.
            out.extend(c.to_string().nfkc());
        } else if matches!(c, '\u{201C}'..='\u{201F}') {
            out.push('"');
        } else if matches!(c, '\u{02BC}' | '\u{2018}'..='\u{201B}') {
            out.push('\'');
        } else if matches!(c, '\r' | '\u{2028}' | '\u{2029}' | '\u{0085}') {
            out.push('\n'); // fix_line_breaks (whitespace either way once cleaned)
        } else if !is_removed_control(c) {
            out.push(c);
        }
    }
    out.nfc().collect()
}

/// Python's `str.split()` separators: Unicode whitespace plus the ASCII information separators.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{1C}'..='\u{1F}')
}

/// `open_clip.tokenizer._clean_lower`.
pub fn open_clip_clean(text: &str) -> String {
    let fixed = ftfy(text);
    let unescaped = htmlize::unescape(htmlize::unescape(&fixed).as_ref()).into_owned();
    let words: Vec<&str> = unescaped.split(is_python_space).filter(|w| !w.is_empty()).collect();
    words.join(" ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_quotes_ligatures_and_width() {
        assert_eq!(open_clip_clean("Tom &amp;amp; Jerry"), "tom & jerry");
        assert_eq!(open_clip_clean("“hi” ‘there’"), "\"hi\" 'there'");
        assert_eq!(open_clip_clean("ﬁne\u{3000}ＡＢ１"), "fine ab1");
        assert_eq!(open_clip_clean("  a\t\n b\u{1F}c "), "a bc");
        // A `<` keeps ftfy from unescaping; the two html.unescape passes still run.
        assert_eq!(open_clip_clean("<b> &amp;amp;amp;"), "<b> &amp;");
    }
}
