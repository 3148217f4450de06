//! The shapes world's ground truth and the embedded demo model. One binary: burn links once.

mod model;
mod raters;
mod variety;
mod world;
