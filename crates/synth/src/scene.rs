//! What a scene is: a background and one to three flat shapes, each with a colour, a size and
//! one of five positions. Scenes are sampled from a seed, so a gallery is a list of numbers.

use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
    Cross,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Red,
    Green,
    Blue,
    Yellow,
    Purple,
    Orange,
    White,
    Black,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    Small,
    Large,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Left,
    Right,
    Top,
    Bottom,
    Center,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Background {
    White,
    Gray,
    Black,
}

impl Shape {
    pub const ALL: [Shape; 5] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star, Shape::Cross];
    pub fn word(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
            Shape::Cross => "cross",
        }
    }
}

impl Colour {
    pub const ALL: [Colour; 8] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Purple,
        Colour::Orange,
        Colour::White,
        Colour::Black,
    ];
    pub fn word(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Purple => "purple",
            Colour::Orange => "orange",
            Colour::White => "white",
            Colour::Black => "black",
        }
    }
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 38, 38],
            Colour::Green => [34, 170, 60],
            Colour::Blue => [37, 80, 230],
            Colour::Yellow => [245, 215, 30],
            Colour::Purple => [140, 50, 180],
            Colour::Orange => [245, 135, 25],
            Colour::White => [255, 255, 255],
            Colour::Black => [0, 0, 0],
        }
    }
}

impl Size {
    pub const ALL: [Size; 2] = [Size::Small, Size::Large];
    pub fn word(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }
    /// Diameter as a share of the canvas side.
    pub fn diameter(self) -> f32 {
        match self {
            Size::Small => 0.2,
            Size::Large => 0.4,
        }
    }
}

impl Position {
    pub const ALL: [Position; 5] = [Position::Left, Position::Right, Position::Top, Position::Bottom, Position::Center];
    /// "on the left", "at the top", …
    pub fn phrase(self) -> &'static str {
        match self {
            Position::Left => "on the left",
            Position::Right => "on the right",
            Position::Top => "at the top",
            Position::Bottom => "at the bottom",
            Position::Center => "in the center",
        }
    }
    /// Centre as shares of the canvas (x right, y down).
    pub fn centre(self) -> (f32, f32) {
        match self {
            Position::Left => (0.25, 0.5),
            Position::Right => (0.75, 0.5),
            Position::Top => (0.5, 0.25),
            Position::Bottom => (0.5, 0.75),
            Position::Center => (0.5, 0.5),
        }
    }
}

impl Background {
    pub const ALL: [Background; 3] = [Background::White, Background::Gray, Background::Black];
    pub fn word(self) -> &'static str {
        match self {
            Background::White => "white",
            Background::Gray => "gray",
            Background::Black => "black",
        }
    }
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Background::White => [255, 255, 255],
            Background::Gray => [128, 128, 128],
            Background::Black => [0, 0, 0],
        }
    }
    /// Whether an object of `colour` would vanish into this background.
    pub fn hides(self, colour: Colour) -> bool {
        matches!((self, colour), (Background::White, Colour::White) | (Background::Black, Colour::Black))
    }
}

/// One flat shape. `jitter` moves the centre and scales the size a little, so that two
/// scenes with the same facts are not the same picture.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub shape: Shape,
    pub colour: Colour,
    pub size: Size,
    pub position: Position,
    /// Offset of the centre, in shares of the canvas (|dx|, |dy| ≤ 0.03).
    pub offset: (f32, f32),
    /// Multiplies the diameter (0.9–1.1).
    pub scale: f32,
    /// Rotation in radians (small: ±0.15), for the star, triangle and cross.
    pub rotation: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    pub background: Background,
    /// At distinct positions, drawn in order (large ones first, so small ones stay visible).
    pub objects: Vec<Object>,
}

impl Object {
    /// A random object of these facts.
    pub fn with_jitter(shape: Shape, colour: Colour, size: Size, position: Position, rng: &mut impl Rng) -> Self {
        Object {
            shape,
            colour,
            size,
            position,
            offset: (rng.random_range(-0.03..=0.03), rng.random_range(-0.03..=0.03)),
            scale: rng.random_range(0.9..=1.1),
            rotation: rng.random_range(-0.15..=0.15),
        }
    }
}

impl Scene {
    /// A random scene with 1–3 objects at distinct positions, none in the background's colour.
    pub fn random(rng: &mut impl Rng) -> Self {
        let background = *Background::ALL.choose(rng).expect("non-empty");
        let count = rng.random_range(1..=3);
        let mut positions = Position::ALL.to_vec();
        let mut objects = Vec::with_capacity(count);
        for _ in 0..count {
            let position = positions.swap_remove(rng.random_range(0..positions.len()));
            objects.push(Scene::random_object(background, position, rng));
        }
        let mut scene = Scene { background, objects };
        scene.order();
        scene
    }

    /// A random object at `position` visible on `background`.
    pub fn random_object(background: Background, position: Position, rng: &mut impl Rng) -> Object {
        let shape = *Shape::ALL.choose(rng).expect("non-empty");
        let colour = loop {
            let c = *Colour::ALL.choose(rng).expect("non-empty");
            if !background.hides(c) {
                break c;
            }
        };
        let size = *Size::ALL.choose(rng).expect("non-empty");
        Object::with_jitter(shape, colour, size, position, rng)
    }

    /// Large objects first, so that a small one on top of a large one stays visible.
    pub fn order(&mut self) {
        self.objects.sort_by_key(|o| o.size == Size::Small);
    }
}
