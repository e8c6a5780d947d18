//! A view per dataset, `tessera_data."<id>"`, over its current table with the fields'
//! own names and real timestamps: what an analyst connecting QGIS, GDAL or another tile
//! server to the database expects to find, instead of `tessera.f_<n>` and `c0, c1, ...`.
//! Field names come from input files, so they reach SQL only double-quoted (a quote
//! doubled), and a name PostgreSQL would cut or could not hold gets a generated one.

use crate::model::{DatasetId, Field};
use std::collections::HashSet;

/// PostgreSQL keeps at most this many bytes of an identifier (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// `name` as a double-quoted identifier; `None` if PostgreSQL would cut or refuse it.
pub(super) fn quoted(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_IDENTIFIER || name.contains('\0') {
        return None;
    }
    Some(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// The view's name, quoted; `None` for an id too long to be one.
pub(super) fn view_name(id: &DatasetId) -> Option<String> {
    quoted(id.as_str()).map(|q| format!("tessera_data.{q}"))
}

/// Statements replacing the view of dataset `id` with one over table `f_{generation}`.
pub(super) fn replace_view(
    id: &DatasetId,
    generation: i64,
    fields: &[Field],
    source_ids: bool,
) -> Option<String> {
    let view = view_name(id)?;
    let served_id = if source_ids { "src" } else { "fid::text" };
    let mut taken: HashSet<String> = ["fid", "id", "geom", "time_start", "time_end"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut columns = format!(
        "fid, {served_id} AS id, geom, to_timestamp(t0) AS time_start, to_timestamp(t1) AS time_end"
    );
    for (i, f) in fields.iter().enumerate() {
        let name = match quoted(&f.name) {
            Some(q) if !taken.contains(&f.name) => {
                taken.insert(f.name.clone());
                q
            }
            _ => {
                let fallback = format!("field_{i}");
                taken.insert(fallback.clone());
                format!("\"{fallback}\"")
            }
        };
        columns.push_str(&format!(", c{i} AS {name}"));
    }
    Some(format!(
        "DROP VIEW IF EXISTS {view}; CREATE VIEW {view} AS SELECT {columns} FROM tessera.f_{generation};"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldType;

    fn field(name: &str) -> Field {
        Field {
            name: name.into(),
            ty: FieldType::String,
        }
    }

    #[test]
    fn hostile_and_clashing_names_stay_identifiers() {
        let id = DatasetId::parse("nyc-311").unwrap();
        let sql = replace_view(
            &id,
            7,
            &[
                field("Crime type"),
                field(r#"x"; DROP TABLE tessera.datasets; --"#),
                field("geom"),
                field("Kraków"),
                field(&"n".repeat(64)),
                field("Crime type"),
            ],
            false,
        )
        .unwrap();
        assert!(sql.contains(r#"c0 AS "Crime type""#), "{sql}");
        assert!(
            sql.contains(r#"c1 AS "x""; DROP TABLE tessera.datasets; --""#),
            "{sql}"
        );
        assert!(sql.contains(r#"c2 AS "field_2""#), "{sql}");
        assert!(sql.contains(r#"c3 AS "Kraków""#), "{sql}");
        assert!(sql.contains(r#"c4 AS "field_4""#), "{sql}");
        assert!(sql.contains(r#"c5 AS "field_5""#), "{sql}");
        assert!(sql.starts_with(r#"DROP VIEW IF EXISTS tessera_data."nyc-311";"#));
        assert!(sql.ends_with("FROM tessera.f_7;"));
    }

    #[test]
    fn an_id_too_long_for_postgresql_gets_no_view() {
        let id = DatasetId::parse(&"a".repeat(64)).unwrap();
        assert_eq!(view_name(&id), None);
        assert!(view_name(&DatasetId::parse(&"a".repeat(63)).unwrap()).is_some());
    }
}
