//! Ground-truth alignment: the share of a caption's facts that an image satisfies. Each
//! described object states three facts (an object of that shape and colour exists; it has
//! that size; it is at that position); a long caption adds the background. Size and
//! position are facts about the described object, so they count only for a scene object of
//! the right shape and colour; each scene object answers for one described object, and the
//! assignment that satisfies most facts is used.

use crate::caption::{Caption, ObjectFacts};
use crate::scene::{Object, Scene};

/// Facts of `described` that `object` satisfies (0 unless shape and colour match).
fn satisfied(described: &ObjectFacts, object: &Object) -> u32 {
    if described.shape != object.shape || described.colour != object.colour {
        return 0;
    }
    1 + u32::from(described.size == object.size) + u32::from(described.position == object.position)
}

/// Most facts satisfied by matching `described[i..]` to unused scene objects.
fn best(described: &[ObjectFacts], objects: &[Object], used: &mut Vec<bool>) -> u32 {
    let Some((first, rest)) = described.split_first() else { return 0 };
    // Leaving this description unmatched is always allowed.
    let mut top = best(rest, objects, used);
    for (j, object) in objects.iter().enumerate() {
        let gain = satisfied(first, object);
        if gain > 0 && !used[j] {
            used[j] = true;
            top = top.max(gain + best(rest, objects, used));
            used[j] = false;
        }
    }
    top
}

/// Alignment `a ∈ [0, 1]` of `caption` with `scene`.
pub fn alignment(caption: &Caption, scene: &Scene) -> f32 {
    let mut total = 3 * caption.objects.len() as u32;
    let mut got = best(&caption.objects, &scene.objects, &mut vec![false; scene.objects.len()]);
    if let Some(background) = caption.background {
        total += 1;
        got += u32::from(background == scene.background);
    }
    if total == 0 {
        return 1.0;
    }
    got as f32 / total as f32
}
