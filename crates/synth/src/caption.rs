//! Captions from templates, with the facts each one states. A single object reads exactly
//! "a {size} {colour} {shape} {where}"; several are joined with " and ". Long captions are
//! sentences (background included) that run past the demo model's text context, so they are
//! encoded segment by segment.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::scene::{Background, Colour, Object, Position, Scene, Shape, Size};

/// What a caption says about one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectFacts {
    pub shape: Shape,
    pub colour: Colour,
    pub size: Size,
    pub position: Position,
}

impl From<&Object> for ObjectFacts {
    fn from(o: &Object) -> Self {
        ObjectFacts { shape: o.shape, colour: o.colour, size: o.size, position: o.position }
    }
}

impl ObjectFacts {
    /// "a large red circle on the left"
    pub fn phrase(&self) -> String {
        format!("a {} {} {} {}", self.size.word(), self.colour.word(), self.shape.word(), self.position.phrase())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    pub text: String,
    pub objects: Vec<ObjectFacts>,
    /// Stated by long captions only.
    pub background: Option<Background>,
}

/// The short caption, objects in the scene's order.
pub fn short(scene: &Scene) -> Caption {
    from_facts(scene.objects.iter().map(ObjectFacts::from).collect())
}

/// The short caption with the objects in a random order.
pub fn short_shuffled(scene: &Scene, rng: &mut impl Rng) -> Caption {
    let mut facts: Vec<ObjectFacts> = scene.objects.iter().map(ObjectFacts::from).collect();
    facts.shuffle(rng);
    from_facts(facts)
}

pub fn from_facts(objects: Vec<ObjectFacts>) -> Caption {
    let text = objects.iter().map(ObjectFacts::phrase).collect::<Vec<_>>().join(" and ");
    Caption { text, objects, background: None }
}

const COUNTS: [&str; 3] = ["one shape", "two shapes", "three shapes"];

/// Several sentences: background, one per object, the count, and the style.
pub fn long(scene: &Scene) -> Caption {
    let objects: Vec<ObjectFacts> = scene.objects.iter().map(ObjectFacts::from).collect();
    let mut text = format!("the background is {}.", scene.background.word());
    for o in &objects {
        text.push_str(&format!(" there is {}.", o.phrase()));
    }
    let count = COUNTS[objects.len().clamp(1, 3) - 1];
    text.push_str(&format!(
        " the picture shows {count}. it is a simple flat drawing with no texture. nothing else is in the picture."
    ));
    Caption { text, objects, background: Some(scene.background) }
}

/// Every word the templates use: the demo tokenizer gives each one a single token.
pub fn vocabulary() -> Vec<&'static str> {
    let mut words = vec![
        "a",
        "and",
        "on",
        "the",
        "at",
        "in",
        "left",
        "right",
        "top",
        "bottom",
        "center",
        "background",
        "is",
        "there",
        "picture",
        "shows",
        "one",
        "two",
        "three",
        "shape",
        "shapes",
        "it",
        "simple",
        "flat",
        "drawing",
        "with",
        "no",
        "texture",
        "nothing",
        "else",
        "gray",
    ];
    words.extend(Shape::ALL.map(Shape::word));
    words.extend(Colour::ALL.map(Colour::word));
    words.extend(Size::ALL.map(Size::word));
    words.sort_unstable();
    words.dedup();
    words
}
