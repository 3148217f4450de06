//! Scenes, captions, alignment, quality and the gallery: the ground truth everything else is
//! judged against, checked on cases worked out by hand.

use prefscope_synth::align::alignment;
use prefscope_synth::caption::{self, ObjectFacts};
use prefscope_synth::degrade::{self, Degradation, Kind};
use prefscope_synth::gallery::{demo, gallery};
use prefscope_synth::raster::{contains, render};
use prefscope_synth::scene::{Background, Colour, Object, Position, Scene, Shape, Size};
use prefscope_synth::world::{Sample, LAMBDA};

fn object(shape: Shape, colour: Colour, size: Size, position: Position) -> Object {
    Object { shape, colour, size, position, offset: (0.0, 0.0), scale: 1.0, rotation: 0.0 }
}

fn scene() -> Scene {
    Scene {
        background: Background::Gray,
        objects: vec![
            object(Shape::Circle, Colour::Red, Size::Large, Position::Left),
            object(Shape::Star, Colour::Blue, Size::Small, Position::Top),
        ],
    }
}

#[test]
fn captions_follow_the_templates() {
    let s = scene();
    assert_eq!(caption::short(&s).text, "a large red circle on the left and a small blue star at the top");
    let long = caption::long(&s);
    assert!(long.text.starts_with("the background is gray. there is a large red circle on the left."), "{}", long.text);
    assert!(long.text.contains("the picture shows two shapes."));
    assert_eq!(long.background, Some(Background::Gray));
    // Every word of every template is in the vocabulary the demo tokenizer builds.
    let vocabulary = caption::vocabulary();
    for text in [caption::short(&s).text, long.text] {
        for word in text.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()) {
            assert!(vocabulary.contains(&word), "{word}");
        }
    }
}

#[test]
fn alignment_counts_the_facts_an_image_satisfies() {
    let s = scene();
    let exact = caption::short(&s);
    assert_eq!(alignment(&exact, &s), 1.0);
    // The star moved: 5 of 6 facts.
    let mut moved = s.clone();
    moved.objects[1].position = Position::Bottom;
    assert!((alignment(&exact, &moved) - 5.0 / 6.0).abs() < 1e-6);
    // The circle turned green: no red circle, so its size and position state nothing true (3/6).
    let mut recoloured = s.clone();
    recoloured.objects[0].colour = Colour::Green;
    assert!((alignment(&exact, &recoloured) - 0.5).abs() < 1e-6);
    // A caption of two red circles matched against one: each scene object answers once.
    let twice = caption::from_facts(vec![
        ObjectFacts { shape: Shape::Circle, colour: Colour::Red, size: Size::Large, position: Position::Left },
        ObjectFacts { shape: Shape::Circle, colour: Colour::Red, size: Size::Small, position: Position::Right },
    ]);
    assert!((alignment(&twice, &s) - 0.5).abs() < 1e-6);
    // Long captions add the background: 7 facts, 6 true on a white background.
    let mut white = s.clone();
    white.background = Background::White;
    assert!((alignment(&caption::long(&s), &white) - 6.0 / 7.0).abs() < 1e-6);
}

#[test]
fn pictures_show_the_facts() {
    let s = scene();
    let image = render(&s, 64);
    let at = |x: u32, y: u32| {
        let i = ((y * 64 + x) * 4) as usize;
        [image.data[i], image.data[i + 1], image.data[i + 2]]
    };
    assert_eq!(at(16, 32), Colour::Red.rgb(), "centre of the left circle");
    assert_eq!(at(32, 16), Colour::Blue.rgb(), "centre of the top star");
    assert_eq!(at(48, 48), Background::Gray.rgb());
    // Large is twice small: the circle spans about 2/5 of the canvas.
    let red = (0..64).filter(|&x| at(x, 32) == Colour::Red.rgb()).count();
    assert!((24..=27).contains(&red), "{red} red pixels across");
    // Shapes in their own frame.
    assert!(contains(Shape::Star, 0.0, -0.95) && !contains(Shape::Star, 0.5, -0.7));
    assert!(contains(Shape::Cross, 0.0, 0.85) && !contains(Shape::Cross, 0.6, 0.6));
    assert!(contains(Shape::Triangle, 0.0, -0.9) && !contains(Shape::Triangle, 0.0, 0.6));
}

#[test]
fn quality_is_what_the_degradations_leave() {
    let d = |kind, severity| Degradation { kind, severity, seed: 1 };
    assert_eq!(degrade::quality(&[]), 1.0);
    assert!((degrade::quality(&[d(Kind::Blur, 0.5), d(Kind::Noise, 0.2)]) - 0.4).abs() < 1e-6);
    let clean = render(&scene(), 64);
    for kind in Kind::ALL {
        let mut light = clean.clone();
        degrade::apply(&mut light, &[d(kind, 0.3)]);
        let mut heavy = clean.clone();
        degrade::apply(&mut heavy, &[d(kind, 0.9)]);
        let distance = |a: &[u8]| a.iter().zip(&clean.data).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>();
        assert!(distance(&light.data) > 0.0, "{kind:?} changed nothing");
        assert!(distance(&heavy.data) > distance(&light.data), "{kind:?} is not monotone in severity");
    }
}

#[test]
fn worlds_are_deterministic_and_varied() {
    assert_eq!(demo(), demo());
    assert_ne!(gallery(1, 4), gallery(2, 4));
    let entries = gallery(3, 40);
    let mut u = Vec::new();
    for entry in &entries {
        assert!((6..=8).contains(&entry.candidates.len()));
        for c in &entry.candidates {
            let t = c.truth;
            assert!((0.0..=1.0).contains(&t.alignment) && (0.0..=1.0).contains(&t.quality));
            assert!((t.utility - (t.alignment + LAMBDA * t.quality)).abs() < 1e-6);
            for o in &c.sample.scene.objects {
                assert!(!c.sample.scene.background.hides(o.colour), "a {o:?} on {:?}", c.sample.scene.background);
            }
            u.push(t.utility);
        }
        // The first candidate is the scene itself, clean.
        assert_eq!(entry.candidates[0].truth.alignment, 1.0);
        assert_eq!(entry.candidates[0].truth.quality, 1.0);
    }
    // Alignment and quality both spread over their range.
    let spread = |f: fn(&prefscope_synth::Truth) -> f32| {
        let v: Vec<f32> = entries.iter().flat_map(|e| e.candidates.iter().map(move |c| f(&c.truth))).collect();
        (v.iter().cloned().fold(f32::MAX, f32::min), v.iter().cloned().fold(f32::MIN, f32::max))
    };
    let (a_lo, a_hi) = spread(|t| t.alignment);
    let (q_lo, q_hi) = spread(|t| t.quality);
    assert!(a_lo <= 0.2 && a_hi == 1.0 && q_lo <= 0.2 && q_hi == 1.0, "{a_lo} {a_hi} {q_lo} {q_hi}");
    // Rendering any size: the display copy has the model copy's layout.
    let sample = Sample { scene: scene(), degradations: vec![] };
    let (small, big) = (sample.render(64), sample.render(256));
    assert_eq!(big.width, 256);
    assert_eq!(&big.data[((128 * 256 + 64) * 4) as usize..][..3], &small.data[((32 * 64 + 16) * 4) as usize..][..3]);
}
