//! Samples of the world with their ground truth, and the edits that make a picture only
//! partly match a caption.

use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::caption::Caption;
use crate::degrade::{self, Degradation};
use crate::raster::{render, Image};
use crate::scene::{Colour, Object, Position, Scene, Shape, Size};

/// Weight of quality in the utility `u = a + λ·q` that labels preference pairs.
pub const LAMBDA: f32 = 0.5;

/// A scene and what was done to its picture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub scene: Scene,
    pub degradations: Vec<Degradation>,
}

impl Sample {
    pub fn quality(&self) -> f32 {
        degrade::quality(&self.degradations)
    }

    /// The degraded picture on a `size`-pixel canvas.
    pub fn render(&self, size: u32) -> Image {
        let mut image = render(&self.scene, size);
        degrade::apply(&mut image, &self.degradations);
        image
    }

    /// Alignment with `caption`, quality, and the utility they give.
    pub fn truth(&self, caption: &Caption) -> Truth {
        let alignment = crate::align::alignment(caption, &self.scene);
        let quality = self.quality();
        Truth { alignment, quality, utility: alignment + LAMBDA * quality }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub alignment: f32,
    pub quality: f32,
    pub utility: f32,
}

/// One random change to one object (shape, colour, size or position), or one object removed
/// or added: the caption of the original then matches only partly.
pub fn mutate(scene: &Scene, rng: &mut impl Rng) -> Scene {
    let mut out = scene.clone();
    let free: Vec<Position> =
        Position::ALL.into_iter().filter(|p| !out.objects.iter().any(|o| o.position == *p)).collect();
    let i = rng.random_range(0..out.objects.len());
    match rng.random_range(0..6) {
        0 => out.objects[i].shape = other(out.objects[i].shape, &Shape::ALL, rng),
        1 => {
            let visible: Vec<Colour> = Colour::ALL.into_iter().filter(|c| !out.background.hides(*c)).collect();
            out.objects[i].colour = other(out.objects[i].colour, &visible, rng);
        }
        2 => out.objects[i].size = other(out.objects[i].size, &Size::ALL, rng),
        3 if !free.is_empty() => out.objects[i].position = *free.choose(rng).expect("non-empty"),
        4 if out.objects.len() > 1 => {
            out.objects.remove(i);
        }
        _ if !free.is_empty() && out.objects.len() < 3 => {
            let position = *free.choose(rng).expect("non-empty");
            out.objects.push(Scene::random_object(out.background, position, rng));
        }
        _ => out.objects[i].shape = other(out.objects[i].shape, &Shape::ALL, rng),
    }
    // Fresh jitter, so the edited picture is not the original pixel for pixel elsewhere.
    for o in &mut out.objects {
        *o = Object::with_jitter(o.shape, o.colour, o.size, o.position, rng);
    }
    out.order();
    out
}

fn other<T: Copy + PartialEq>(current: T, all: &[T], rng: &mut impl Rng) -> T {
    loop {
        let pick = *all.choose(rng).expect("non-empty");
        if pick != current {
            return pick;
        }
    }
}
