//! Embeddings, logits and LongAlign segment averages against transformers CLIPModel and
//! open_clip, run in float64 on the same stored weights (tests/fixtures/clip/generate.py).

use prefscope_clip::Backend;

use crate::common::{cosine, floats, image, json, load, rows};

/// One 8-bit level after normalisation (std ≈ 0.26): torchvision's antialiased bicubic and
/// Pillow's agree to within it (FORMULAS.md "Image preprocessing"). A JPEG gets one more:
/// libjpeg (Pillow) and zune-jpeg (the image crate) round the inverse DCT differently.
const LEVEL: f32 = 1.0 / 255.0 / 0.26;

/// Every comparison for one model on one backend.
pub async fn check_model(name: &str, backend_name: &str, backend: Backend) {
    let expected = json(&format!("{name}/expected.json"));
    let encoder = load(name, backend);
    let ctx = format!("{name} on {backend_name}");

    // Ids as the reference tokenised them.
    let texts: Vec<String> =
        expected["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    for (text, ids) in texts.iter().zip(expected["input_ids"].as_array().unwrap()) {
        let ids: Vec<u32> = ids.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(encoder.tokenizer().encode(text).unwrap().ids, ids, "{ctx}: ids of {text:?}");
    }

    // Pixels: within one 8-bit level of the reference's processor.
    let images: Vec<_> = expected["images"].as_array().unwrap().iter().map(|n| image(n.as_str().unwrap())).collect();
    let size = encoder.config().vision.image_size as u32;
    let mut resized = Vec::new();
    for (image, reference) in images.iter().zip(expected["pixel_values"].as_array().unwrap()) {
        let pixels = encoder.pixels(image, &encoder.preset()).await.unwrap();
        let reference = floats(reference);
        assert_eq!(pixels.data.len(), reference.len(), "{ctx}: {}", image.name);
        let worst = pixels.data.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let levels = if image.name.ends_with(".jpg") { 2.0 } else { 1.0 };
        assert!(worst <= levels * LEVEL * 1.01, "{ctx}: {} pixels differ by {worst}", image.name);
        resized.push(!(image.width == size && image.height == size));
    }

    // Text embeddings: cos ≥ 0.9999.
    let text_embeds = encoder.embed_texts(&texts).await.unwrap();
    for ((text, got), want) in texts.iter().zip(&text_embeds).zip(rows(&expected["text_embeds"])) {
        assert_eq!(got.segments, 1);
        let c = cosine(&got.vector, &want);
        assert!(c >= 0.9999, "{ctx}: text {text:?} cos {c}");
    }

    // Image embeddings: cos ≥ 0.9999 without resizing, ≥ 0.999 after.
    let image_embeds = encoder.embed_images(&images, None).await.unwrap();
    let want_images = rows(&expected["image_embeds"]);
    for (i, image) in images.iter().enumerate() {
        let c = cosine(image_embeds.row(i), &want_images[i]);
        let floor = if resized[i] { 0.999 } else { 0.9999 };
        assert!(c >= floor, "{ctx}: image {} cos {c} < {floor}", image.name);
    }

    // Logits exp(logit_scale)·cos: within 1e-4 relative for the images that need no resize.
    let scale = (encoder.logit_scale() as f64).exp();
    let want_scale = expected["logit_scale_exp"].as_f64().unwrap();
    assert!((scale - want_scale).abs() <= 1e-6 * want_scale, "{ctx}: logit scale {scale} vs {want_scale}");
    let logits = rows(&expected["logits_per_image"]);
    let mut compared = 0;
    for (i, row) in logits.iter().enumerate().filter(|(i, _)| !resized[*i]) {
        for (j, &want) in row.iter().enumerate() {
            let got = scale * cosine(image_embeds.row(i), &text_embeds[j].vector);
            let tolerance = 1e-4 * (want.abs() as f64).max(1.0);
            assert!((got - want as f64).abs() <= tolerance, "{ctx}: logit[{i}][{j}] {got} vs {want}");
            compared += 1;
        }
    }
    assert!(compared >= texts.len(), "{ctx}: no image at the model's size");

    // Long texts: LongAlign segments, averaged without renormalising.
    for long in expected["long_texts"].as_array().unwrap() {
        let text = long["text"].as_str().unwrap().to_string();
        let got = encoder.embed_texts(std::slice::from_ref(&text)).await.unwrap().remove(0);
        assert_eq!(got.segments, long["segments"].as_array().unwrap().len(), "{ctx}: segments of a long text");
        let want = floats(&long["embedding"]);
        let c = cosine(&got.vector, &want);
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        assert!(c >= 0.9999, "{ctx}: long text cos {c}");
        assert!((norm(&got.vector) - norm(&want)).abs() <= 1e-4, "{ctx}: long text norm");
    }
}
