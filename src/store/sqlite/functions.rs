//! SQL functions Tessera registers on every connection.

use crate::spatial::Area;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

/// `tessera_within(minx, miny, maxx, maxy, area_wkb)`: whether the centre of the
/// bounds lies in the area. The area is parsed once per statement (SQLite keeps it as
/// auxiliary data of the constant argument).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("tessera_within", 5, flags, |ctx| {
        let bounds = (
            ctx.get::<Option<f64>>(0)?,
            ctx.get::<Option<f64>>(1)?,
            ctx.get::<Option<f64>>(2)?,
            ctx.get::<Option<f64>>(3)?,
        );
        let (Some(minx), Some(miny), Some(maxx), Some(maxy)) = bounds else {
            return Ok(false);
        };
        type AuxError = Box<dyn std::error::Error + Send + Sync>;
        let area = ctx.get_or_create_aux(4, |v| -> Result<Option<Area>, AuxError> {
            let shape = v
                .as_blob()
                .ok()
                .and_then(|b| crate::store::wkb::decode(b).ok());
            Ok(shape.as_ref().and_then(Area::from_geometry))
        })?;
        let centre = ((minx + maxx) / 2.0, (miny + maxy) / 2.0);
        Ok(area
            .as_ref()
            .as_ref()
            .is_some_and(|a| a.contains(centre.0, centre.1)))
    })
}
