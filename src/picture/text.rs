//! Text on a picture: glyph outlines of the vendored Noto Sans (the map page's font,
//! `assets/fonts/`, SIL OFL 1.1) rasterised by `ab_glyph` and blended into the canvas.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use std::sync::OnceLock;
use tiny_skia::{ColorU8, Pixmap};

static NOTO_SANS: &[u8] = include_bytes!("../../assets/fonts/NotoSans-Regular.ttf");

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(NOTO_SANS).expect("the vendored TTF parses"))
}

/// A text's box: width and height (ascent + descent) in pixels at `size`.
pub fn measure(text: &str, size: f32) -> (f32, f32) {
    let f = font().as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut last = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(prev) = last {
            width += f.kern(prev, id);
        }
        width += f.h_advance(id);
        last = Some(id);
    }
    (width, f.ascent() - f.descent())
}

/// Draws `text` with its box's top-left at (`x`, `y`), `size` px high, in `colour`; with a
/// halo of `halo` px in `halo_colour` around each glyph first (so light text stays legible
/// over any map), none when `halo` is 0.
pub fn draw(
    canvas: &mut Pixmap,
    text: &str,
    (x, y): (f32, f32),
    size: f32,
    colour: ColorU8,
    halo: Option<(f32, ColorU8)>,
) {
    if let Some((w, c)) = halo.filter(|(w, _)| *w > 0.0) {
        let d = w * std::f32::consts::FRAC_1_SQRT_2;
        for (dx, dy) in [
            (w, 0.0),
            (-w, 0.0),
            (0.0, w),
            (0.0, -w),
            (d, d),
            (-d, d),
            (d, -d),
            (-d, -d),
        ] {
            glyphs(canvas, text, (x + dx, y + dy), size, c);
        }
    }
    glyphs(canvas, text, (x, y), size, colour);
}

fn glyphs(canvas: &mut Pixmap, text: &str, (x, y): (f32, f32), size: f32, colour: ColorU8) {
    let f = font().as_scaled(PxScale::from(size));
    let baseline = y + f.ascent();
    let mut pen = x;
    let mut last = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(prev) = last {
            pen += f.kern(prev, id);
        }
        let glyph = id.with_scale_and_position(size, point(pen, baseline));
        pen += f.h_advance(id);
        last = Some(id);
        let Some(outline) = f.outline_glyph(glyph) else {
            continue; // a space
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = b.min.x as i32 + gx as i32;
            let py = b.min.y as i32 + gy as i32;
            blend(canvas, px, py, colour, coverage);
        });
    }
}

/// Source-over of one pixel of `colour` at `coverage` (0..1) onto the premultiplied canvas.
fn blend(canvas: &mut Pixmap, x: i32, y: i32, colour: ColorU8, coverage: f32) {
    let (w, h) = (canvas.width() as i32, canvas.height() as i32);
    if x < 0 || y < 0 || x >= w || y >= h {
        return;
    }
    let i = (y * w + x) as usize;
    let a = f32::from(colour.alpha()) / 255.0 * coverage.clamp(0.0, 1.0);
    let pixels = canvas.pixels_mut();
    let dst = pixels[i];
    let mix = |s: u8, d: u8| -> u8 {
        (f32::from(s) * a + f32::from(d) * (1.0 - a))
            .round()
            .clamp(0.0, 255.0) as u8
    };
    let out_a = mix(255, dst.alpha());
    let r = mix(colour.red(), dst.red()).min(out_a);
    let g = mix(colour.green(), dst.green()).min(out_a);
    let b = mix(colour.blue(), dst.blue()).min(out_a);
    if let Some(p) = tiny_skia::PremultipliedColorU8::from_rgba(r, g, b, out_a) {
        pixels[i] = p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_leaves_ink_where_it_is_drawn_and_nowhere_else() {
        let mut canvas = Pixmap::new(120, 40).unwrap();
        canvas.fill(tiny_skia::Color::WHITE);
        let (w, h) = measure("Tessera", 16.0);
        assert!(w > 40.0 && w < 100.0 && h > 14.0 && h < 26.0, "{w} x {h}");
        draw(
            &mut canvas,
            "Tessera",
            (10.0, 10.0),
            16.0,
            ColorU8::from_rgba(0, 0, 0, 255),
            None,
        );
        let dark = |x: u32, y: u32| canvas.pixel(x, y).unwrap().red() < 128;
        let inked = (10..10 + w as u32).flat_map(|x| (10..10 + h as u32).map(move |y| (x, y)));
        assert!(inked.filter(|&(x, y)| dark(x, y)).count() > 50);
        assert!((0..120).all(|x| !dark(x, 2) && !dark(x, 38)));
    }
}
