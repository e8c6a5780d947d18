//! HTML: a table of the features in the page frame of the other pages (the markup is
//! built in [`crate::http::html`], which escapes every value).

use super::{Collection, FeatureWriter};
use crate::http::html;
use crate::store::StoredFeature;
use std::io::{self, Write};

/// The table needs the whole page at once (its caption counts the rows), so features
/// are kept until [`FeatureWriter::finish`]; pages are bounded by the page size.
#[derive(Debug)]
pub struct HtmlWriter<W> {
    out: W,
    features: Vec<StoredFeature>,
}

impl<W: Write> HtmlWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            features: Vec::new(),
        }
    }
}

impl<W: Write> FeatureWriter<W> for HtmlWriter<W> {
    fn content_type(&self) -> &'static str {
        "text/html; charset=utf-8"
    }
    fn extension(&self) -> &'static str {
        "html"
    }
    fn begin(&mut self, c: &Collection<'_>) -> io::Result<()> {
        self.features.reserve(c.page.map_or(0, |p| p.returned));
        Ok(())
    }
    fn feature(&mut self, _: &Collection<'_>, f: StoredFeature) -> io::Result<()> {
        self.features.push(f);
        Ok(())
    }
    fn finish(mut self: Box<Self>, c: &Collection<'_>) -> io::Result<W> {
        let all = self.features.len() as u64;
        let page = html::ItemsPage {
            base: c.base,
            ds: c.ds,
            features: &self.features,
            matched: c.page.map_or(all, |p| p.matched),
            offset: c.page.map_or(0, |p| p.offset),
            limit: c.page.map_or(all, |p| p.limit),
            links: c.page.map_or(&[], |p| p.links),
            view: c.page.map_or("", |p| p.view),
        };
        self.out.write_all(html::items(&page).as_bytes())?;
        Ok(self.out)
    }
}
