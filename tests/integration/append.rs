//! `--append` streams: the store copies the old version's rows itself, existing
//! features keep their ids, and stored types widen only when new values force it.

use crate::support::*;
use serde_json::{Value as Json, json};
use std::cell::Cell;
use std::collections::BTreeMap;
use tessera::import::{MEMORY_BUDGET, write_version};
use tessera::model::{DatasetId, DatasetInfo, Field, FieldType};
use tessera::store::{Committed, DatasetWriter, FeatureRow, NewVersion, StoreError, WriteMode};

fn types(info: &DatasetInfo) -> BTreeMap<String, FieldType> {
    info.fields.iter().map(|f| (f.name.clone(), f.ty)).collect()
}

/// Every feature of `id` as served: id -> properties.
async fn served(s: &Server, id: &str) -> BTreeMap<String, Json> {
    let fc = s.items(id, &[("limit", "1000")]).await;
    features(&fc)
        .iter()
        .map(|f| (id_of(f), f["properties"].clone()))
        .collect()
}

#[tokio::test]
async fn append_keeps_ids_and_widens_types_only_when_new_values_force_it() {
    let s = Server::start().await;
    let old = "name,count,score,flag,Longitude,Latitude\n\
               a,1,3,true,-0.1,51.5\nb,2,4,false,-0.2,51.6\nc,3,5,true,-0.3,51.4\n";
    s.import(&request("ds", &[s.data.write("old.csv", old)]));
    let before = served(&s, "ds").await;
    assert_eq!(before.len(), 3);

    // `score` gets a decimal (integer -> number), `flag` is absent (stays boolean),
    // `count` stays integer, `extra` is new.
    let new = "name,count,score,extra,Longitude,Latitude\n\
               d,4,2.5,x,-0.15,51.55\ne,5,6,y,-0.25,51.45\n";
    let mut req = request("ds", &[s.data.write("new.csv", new)]);
    req.append = true;
    let report = s.import(&req);
    assert_eq!((report.rows_read, report.imported), (2, 5));
    let info = s.data.info("ds").unwrap();
    let want: BTreeMap<String, FieldType> = [
        ("name", FieldType::String),
        ("count", FieldType::Integer),
        ("score", FieldType::Number),
        ("flag", FieldType::Boolean),
        ("extra", FieldType::String),
        ("Longitude", FieldType::Number),
        ("Latitude", FieldType::Number),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t))
    .collect();
    assert_eq!(types(&info), want);

    let after = served(&s, "ds").await;
    assert_eq!(after.len(), 5);
    for (id, props) in &before {
        let now = &after[id];
        assert_eq!(now["name"], props["name"], "feature {id} kept its id");
        assert_eq!(now["count"], props["count"]);
        assert_eq!(now["flag"], props["flag"]);
        assert_eq!(now["extra"], Json::Null);
        let score = props["score"].as_i64().expect("old score was an integer");
        assert_eq!(now["score"].as_f64(), Some(score as f64));
        // The single-feature endpoint answers the same id.
        let f = s.json(&format!("/collections/ds/items/{id}")).await;
        assert_eq!(f["properties"]["name"], props["name"]);
    }
    let added: Vec<&Json> = after
        .iter()
        .filter(|(id, _)| !before.contains_key(*id))
        .map(|(_, p)| p)
        .collect();
    let mut names: Vec<&str> = added.iter().map(|p| p["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["d", "e"]);
    assert!(added.iter().any(|p| p["score"] == json!(2.5)));

    // A value no boolean reads makes the column text; the stored ones keep their words.
    let odd = "name,flag,Longitude,Latitude\nf,maybe,-0.12,51.52\n";
    let mut req = request("ds", &[s.data.write("odd.csv", odd)]);
    req.append = true;
    s.import(&req);
    assert_eq!(
        types(&s.data.info("ds").unwrap())["flag"],
        FieldType::String
    );
    let last = served(&s, "ds").await;
    for (id, props) in &before {
        let word = if props["flag"] == json!(true) {
            "true"
        } else {
            "false"
        };
        assert_eq!(last[id]["flag"], json!(word), "feature {id}");
        assert_eq!(last[id]["name"], props["name"]);
    }
}

/// A writer that passes everything to the real one and counts the rows it is given.
struct Counting<'a> {
    inner: Box<dyn DatasetWriter + 'a>,
    rows: &'a Cell<u64>,
}

impl DatasetWriter for Counting<'_> {
    fn base(&self) -> Option<&DatasetInfo> {
        self.inner.base()
    }
    fn schema(&mut self, fields: &[Field]) -> Result<(), StoreError> {
        self.inner.schema(fields)
    }
    fn write(&mut self, rows: &[FeatureRow]) -> Result<(), StoreError> {
        self.rows.set(self.rows.get() + rows.len() as u64);
        self.inner.write(rows)
    }
    fn commit(self: Box<Self>, version: NewVersion) -> Result<Committed, StoreError> {
        self.inner.commit(version)
    }
}

/// The pipeline hands the writer only the new file's rows, however large the dataset
/// already is (and in memory or spilled to disk alike): the old ones never pass through it.
#[test]
fn append_passes_only_the_new_rows_to_the_writer() {
    let c = TestCatalog::new();
    c.import(&fixture_request("uk", "uk-crime-sample.csv"));
    let id = DatasetId::parse("uk").unwrap();
    let mut req = fixture_request("uk", "uk-crime-sample.csv.gz");
    req.append = true;
    for (budget, want) in [(MEMORY_BUDGET, 400), (0, 600)] {
        let rows = Cell::new(0);
        let inner = c.catalog.writer(&id, WriteMode::Append).unwrap();
        assert_eq!(inner.base().map(|b| b.feature_count), Some(want - 200));
        let writer = Box::new(Counting { inner, rows: &rows });
        let report = write_version(writer, &req, &mut |_| {}, budget).unwrap();
        assert_eq!(
            rows.get(),
            200,
            "only the appended file's rows were written"
        );
        assert_eq!(report.imported, want);
        let info = c.info("uk").unwrap();
        assert_eq!(info.feature_count, want);
        assert_eq!(info.without_geometry_total(), want / 200 * 24);
    }
}

/// A writer dropped without its commit (an error, a panic) leaves the previous version.
#[test]
fn a_writer_dropped_before_commit_changes_nothing() {
    let c = TestCatalog::new();
    c.import(&fixture_request("uk", "uk-crime-sample.csv"));
    let before = c.info("uk").unwrap();
    let id = DatasetId::parse("uk").unwrap();
    for mode in [WriteMode::Replace, WriteMode::Append] {
        let mut w = c.catalog.writer(&id, mode).unwrap();
        w.schema(&before.fields).unwrap();
        w.write(&[]).unwrap();
        drop(w);
        let now = c.info("uk").unwrap();
        assert_eq!(now.version, before.version);
        assert_eq!(now.feature_count, 200);
    }
    // And the catalog takes the next import.
    c.import(&fixture_request("uk", "mpls-stops-sample.csv"));
    assert_eq!(c.info("uk").unwrap().feature_count, 100);
}
