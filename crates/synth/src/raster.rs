//! The generator's rasteriser: each pixel takes the colour of the last object whose shape
//! contains the pixel's centre (flat fill, hard edges), at any canvas size.

use crate::scene::{Object, Scene, Shape};

/// An RGBA8 picture, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Image {
    pub fn filled(size: u32, rgb: [u8; 3]) -> Self {
        let mut data = Vec::with_capacity((size * size * 4) as usize);
        for _ in 0..size * size {
            data.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
        Image { width: size, height: size, data }
    }
}

/// Whether the point `(u, v)`, in the object's frame scaled so its outer radius is 1 (v down),
/// lies inside `shape`. Star and triangle point up.
pub fn contains(shape: Shape, u: f32, v: f32) -> bool {
    match shape {
        Shape::Circle => u * u + v * v <= 1.0,
        Shape::Square => u.abs() <= 0.8 && v.abs() <= 0.8,
        // Apex (0, −1), base at v = 0.5: an equilateral triangle inscribed in the unit circle.
        Shape::Triangle => v <= 0.5 && u.abs() <= (v + 1.0) / 3f32.sqrt(),
        Shape::Cross => (u.abs() <= 0.3 && v.abs() <= 0.9) || (v.abs() <= 0.3 && u.abs() <= 0.9),
        Shape::Star => in_star(u, v, 0.45),
    }
}

/// A five-pointed star with outer radius 1 and inner radius `inner`.
pub(crate) fn in_star(u: f32, v: f32, inner: f32) -> bool {
    use std::f32::consts::PI;
    let rho = (u * u + v * v).sqrt();
    if rho > 1.0 {
        return false;
    }
    let sector = 2.0 * PI / 5.0;
    // Angle from the upward axis, folded into one half-sector: 0 at a tip, π/5 at a notch.
    let theta = u.atan2(-v).rem_euclid(sector);
    let phi = theta.min(sector - theta);
    let (x, y) = (rho * phi.cos(), rho * phi.sin());
    let (px, py) = (1.0, 0.0);
    let (qx, qy) = (inner * (PI / 5.0).cos(), inner * (PI / 5.0).sin());
    // Inside when on the origin's side of the edge from the tip P to the notch Q.
    let side = |x: f32, y: f32| (qx - px) * (y - py) - (qy - py) * (x - px);
    side(x, y) * side(0.0, 0.0) >= 0.0
}

/// Canvas-space geometry of an object on a `size`-pixel canvas: centre and outer radius.
pub fn placement(object: &Object, size: f32) -> (f32, f32, f32) {
    let (cx, cy) = object.position.centre();
    let radius = object.size.diameter() * object.scale * size / 2.0;
    ((cx + object.offset.0) * size, (cy + object.offset.1) * size, radius)
}

/// Draws `scene` on a `size`×`size` canvas.
pub fn render(scene: &Scene, size: u32) -> Image {
    let mut image = Image::filled(size, scene.background.rgb());
    let s = size as f32;
    for object in &scene.objects {
        let (cx, cy, r) = placement(object, s);
        let (sin, cos) = object.rotation.sin_cos();
        let rgb = object.colour.rgb();
        let lo = |c: f32| ((c - r).floor().max(0.0)) as u32;
        let hi = |c: f32| ((c + r).ceil().min(s)) as u32;
        for y in lo(cy)..hi(cy) {
            for x in lo(cx)..hi(cx) {
                let (dx, dy) = ((x as f32 + 0.5 - cx) / r, (y as f32 + 0.5 - cy) / r);
                // Into the object's frame: rotate by −rotation.
                let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
                if contains(object.shape, u, v) {
                    let i = ((y * size + x) * 4) as usize;
                    image.data[i..i + 3].copy_from_slice(&rgb);
                }
            }
        }
    }
    image
}
