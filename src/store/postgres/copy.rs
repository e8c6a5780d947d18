//! PostgreSQL's binary `COPY` format, written directly: a header, then per row a field
//! count and each field as a length and its binary form (or -1 for NULL), then a trailer.
//! See the PostgreSQL manual, "COPY", section "Binary Format".

use super::read::{Param, as_column};
use crate::ingest::Geometry;
use crate::model::{FieldType, Value};
use bytes::{BufMut, BytesMut};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
const SRID: u32 = 4326;

/// The header: signature, flags (no OIDs), no extension area.
pub(super) fn header(out: &mut BytesMut) {
    out.put_slice(SIGNATURE);
    out.put_i32(0);
    out.put_i32(0);
}

pub(super) fn trailer(out: &mut BytesMut) {
    out.put_i16(-1);
}

/// Field writers for one row; fields must come in column order.
pub(super) struct RowWriter<'a> {
    out: &'a mut BytesMut,
}

impl<'a> RowWriter<'a> {
    pub(super) fn start(out: &'a mut BytesMut, fields: usize) -> Self {
        out.put_i16(i16::try_from(fields).expect("fewer than 32,768 columns"));
        Self { out }
    }
    pub(super) fn null(&mut self) {
        self.out.put_i32(-1);
    }
    pub(super) fn i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.out.put_i32(8);
                self.out.put_i64(v);
            }
            None => self.null(),
        }
    }
    pub(super) fn f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => {
                self.out.put_i32(8);
                self.out.put_f64(v);
            }
            None => self.null(),
        }
    }
    pub(super) fn bytes(&mut self, v: Option<&[u8]>) {
        match v {
            Some(b) => {
                self.out.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
                self.out.put_slice(b);
            }
            None => self.null(),
        }
    }
    /// Text as PostgreSQL can hold it: a NUL (which its text type refuses, failing the
    /// whole COPY) becomes U+FFFD, the replacement character.
    pub(super) fn text(&mut self, v: Option<&str>) {
        match v {
            Some(t) if t.contains('\0') => self.bytes(Some(t.replace('\0', "\u{fffd}").as_bytes())),
            other => self.bytes(other.map(str::as_bytes)),
        }
    }
    /// A field value, converted to its column's type as the read side binds it.
    pub(super) fn value(&mut self, v: &Value, ty: FieldType) {
        match as_column(v, ty) {
            None => self.null(),
            Some(Param::I64(i)) => self.i64(Some(i)),
            Some(Param::F64(x)) => self.f64(Some(x)),
            Some(Param::Bool(b)) => {
                self.out.put_i32(1);
                self.out.put_u8(u8::from(b));
            }
            Some(Param::Text(s)) => self.text(Some(&s)),
            Some(Param::Bytes(b)) => self.bytes(Some(&b)),
        }
    }
    /// A geometry as EWKB with SRID 4326, what PostGIS's binary input reads.
    pub(super) fn geometry(&mut self, g: Option<&Geometry>) {
        let Some(g) = g else { return self.null() };
        match &g.shape {
            None => {
                self.out.put_i32(25);
                self.out.put_u8(1);
                self.out.put_u32_le(1 | 0x2000_0000);
                self.out.put_u32_le(SRID);
                self.out.put_f64_le(g.bounds.min_x);
                self.out.put_f64_le(g.bounds.min_y);
            }
            Some(shape) => {
                let wkb = crate::store::wkb::encode(shape);
                // ISO WKB from our encoder is little-endian: byte order, type, body.
                self.out
                    .put_i32(i32::try_from(wkb.len() + 4).unwrap_or(i32::MAX));
                self.out.put_u8(wkb[0]);
                let ty = u32::from_le_bytes([wkb[1], wkb[2], wkb[3], wkb[4]]);
                self.out.put_u32_le(ty | 0x2000_0000);
                self.out.put_u32_le(SRID);
                self.out.put_slice(&wkb[5..]);
            }
        }
    }
}
