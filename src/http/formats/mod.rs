//! Output formats of feature collections, each behind one [`FeatureWriter`]: a page of
//! items and a whole export are written the same way whatever the format (begin with
//! the collection's metadata and links, one call per feature, finish).
//!
//! Adding a format: a file here implementing [`FeatureWriter`], its arm in [`writer`],
//! and its name in [`crate::query::Format`] (the `f=` parameter's values).

mod csv;
pub mod geojson;
mod html;
pub mod ics;

use crate::model::DatasetInfo;
use crate::query::Format;
use crate::store::StoredFeature;
use serde_json::Value as Json;
use std::io::{self, Write};

/// What a collection response says about itself besides its features.
#[derive(Debug, Clone, Copy)]
pub struct Collection<'a> {
    /// The URL prefix of links.
    pub base: &'a str,
    pub ds: &'a DatasetInfo,
    /// Properties to write, by field index (`None`: all).
    pub properties: Option<&'a [usize]>,
    /// A page's place in the whole answer; `None` for an export of every match.
    pub page: Option<Page<'a>>,
}

/// One page of a paged answer.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// Features matching the request on all pages.
    pub matched: u64,
    /// Features on this page.
    pub returned: usize,
    pub offset: u64,
    pub limit: u64,
    /// `self`, `alternate`, `next`, `prev`, ... as link objects.
    pub links: &'a [Json],
    /// The request's filters as a query string, for links to the same view elsewhere.
    pub view: &'a str,
}

/// Writes one feature collection into the sink `W` it was made with.
pub trait FeatureWriter<W: Write> {
    /// The media type of what this writer writes.
    fn content_type(&self) -> &'static str;
    /// The file name extension of a download in this format.
    fn extension(&self) -> &'static str;
    fn begin(&mut self, c: &Collection<'_>) -> io::Result<()>;
    fn feature(&mut self, c: &Collection<'_>, f: StoredFeature) -> io::Result<()>;
    /// Ends the collection and hands back the sink.
    fn finish(self: Box<Self>, c: &Collection<'_>) -> io::Result<W>;
}

/// The writer of `format` around `out`.
pub fn writer<W: Write + 'static>(format: Format, out: W) -> Box<dyn FeatureWriter<W>> {
    match format {
        Format::Json => Box::new(geojson::GeoJsonWriter::new(out)),
        Format::Html => Box::new(html::HtmlWriter::new(out)),
        Format::Csv => Box::new(csv::CsvWriter::new(out)),
        Format::Ics => Box::new(ics::IcsWriter::new(out, None)),
    }
}

/// A whole collection in one buffer, with its media type: what a page response sends.
pub fn write_all(
    format: Format,
    c: &Collection<'_>,
    features: Vec<StoredFeature>,
) -> io::Result<(&'static str, Vec<u8>)> {
    let mut w = writer(format, Vec::with_capacity(256 + features.len() * 256));
    let content_type = w.content_type();
    w.begin(c)?;
    for f in features {
        w.feature(c, f)?;
    }
    Ok((content_type, w.finish(c)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;
    use crate::store::StoredGeometry;

    fn ds() -> DatasetInfo {
        serde_json::from_value(serde_json::json!({
            "id": "sites",
            "meta": {"title": "Sites", "description": "", "attribution": "", "licence": "",
                     "source": "", "kind": "incidents", "category": null},
            "fields": [{"name": "name", "type": "string"}, {"name": "n", "type": "integer"}],
            "geometry_type": "Point", "bounds": null, "time_extent": null,
            "feature_count": 3, "without_geometry": [], "version": 1, "updated": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    fn features() -> Vec<StoredFeature> {
        (1..=3_i32)
            .map(|i| StoredFeature {
                id: i.to_string(),
                geometry: Some(StoredGeometry::Point {
                    lon: f64::from(i),
                    lat: 51.5,
                }),
                time: None,
                values: vec![
                    Value::Text(format!("<b>{i}, \"x\"</b>")),
                    Value::Integer(i.into()),
                ],
            })
            .collect()
    }

    /// Every format writes each feature it is given, in order, with its values intact
    /// (each read back by a parser of that format, not by this crate's writers).
    #[test]
    fn every_format_writes_every_feature() {
        let ds = ds();
        let links = [serde_json::json!({"rel": "self", "href": "http://h/x"})];
        let page = Page {
            matched: 7,
            returned: 3,
            offset: 0,
            limit: 3,
            links: &links,
            view: "",
        };
        let c = Collection {
            base: "http://h",
            ds: &ds,
            properties: None,
            page: Some(page),
        };
        let (ty, json) = write_all(Format::Json, &c, features()).unwrap();
        assert_eq!(ty, "application/geo+json");
        let doc: Json = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["numberMatched"], 7);
        assert_eq!(doc["numberReturned"], 3);
        assert_eq!(doc["links"][0]["href"], "http://h/x");
        let ids: Vec<&Json> = doc["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| &f["id"])
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(doc["features"][2]["properties"]["name"], "<b>3, \"x\"</b>");

        let export = Collection {
            page: None,
            properties: Some(&[1]),
            ..c
        };
        let (ty, csv) = write_all(Format::Csv, &export, features()).unwrap();
        assert_eq!(ty, "text/csv; charset=utf-8");
        let mut r = ::csv::Reader::from_reader(&csv[..]);
        assert_eq!(
            r.headers().unwrap(),
            vec!["id", "longitude", "latitude", "n"]
        );
        let rows: Vec<::csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], vec!["2", "2", "51.5", "2"]);

        let (ty, html) = write_all(Format::Html, &c, features()).unwrap();
        assert_eq!(ty, "text/html; charset=utf-8");
        let html = String::from_utf8(html).unwrap();
        assert_eq!(
            html.matches("/collections/sites/items/").count(),
            3,
            "{html}"
        );
        assert!(
            html.contains("&lt;b&gt;1, &quot;x&quot;&lt;/b&gt;"),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains(" of 7 matching"), "{html}");
    }
}
