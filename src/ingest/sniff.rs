//! Where the content of an input starts: past a byte order mark and any amount of
//! whitespace (not just the first buffer), refusing what is not UTF-8 text.

use super::IngestError;
use std::io::{self, BufRead};
use std::path::Path;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The first significant byte (`None` for an input of only whitespace) and its line.
#[derive(Debug)]
pub(super) struct Start {
    pub first: Option<u8>,
    pub line: u64,
}

#[derive(Debug)]
pub(super) enum SniffError {
    Io(io::Error),
    NotText { line: u64, message: String },
}

impl From<io::Error> for SniffError {
    fn from(e: io::Error) -> Self {
        SniffError::Io(e)
    }
}

impl SniffError {
    pub fn into_ingest(self, path: &Path) -> IngestError {
        match self {
            SniffError::Io(source) => IngestError::Io {
                file: path.to_owned(),
                source,
            },
            SniffError::NotText { line, message } => IngestError::Format {
                file: path.to_owned(),
                line,
                message,
            },
        }
    }
}

fn newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Consumes the byte order mark and leading whitespace, leaving the first significant
/// byte unread. A whole file of whitespace reads to its end in bounded memory.
pub(super) fn start(r: &mut impl BufRead) -> Result<Start, SniffError> {
    let mut line = 1;
    let head = r.fill_buf()?;
    // UTF-16 and UTF-32 both start with one of these marks.
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(SniffError::NotText {
            line,
            message: "the file is UTF-16 (it starts with a UTF-16 byte order mark); convert it to UTF-8 first, e.g. `iconv -f UTF-16 -t UTF-8`".into(),
        });
    }
    if head.starts_with(UTF8_BOM) {
        r.consume(UTF8_BOM.len());
    }
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(Start { first: None, line });
        }
        let Some(i) = buf.iter().position(|b| !b.is_ascii_whitespace()) else {
            line += newlines(buf);
            let n = buf.len();
            r.consume(n);
            continue;
        };
        line += newlines(&buf[..i]);
        let first = buf[i];
        if let Some(nul) = buf[i..].iter().position(|&b| b == 0) {
            return Err(SniffError::NotText {
                line: line + newlines(&buf[i..i + nul]),
                message: "a NUL byte: binary data or UTF-16 without a byte order mark, not CSV or GeoJSON text".into(),
            });
        }
        r.consume(i);
        return Ok(Start {
            first: Some(first),
            line,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_longer_than_a_buffer_is_skipped() {
        let mut text = vec![b' '; 200_000];
        text.extend_from_slice(b"\n\n{\"type\"");
        let mut r = io::BufReader::with_capacity(1 << 16, &text[..]);
        let s = start(&mut r).unwrap();
        assert_eq!((s.first, s.line), (Some(b'{'), 3));
        assert_eq!(r.fill_buf().unwrap()[0], b'{');
    }

    #[test]
    fn utf16_and_nul_are_not_text() {
        for bytes in [&b"\xFF\xFEa\0b\0"[..], b"\xFE\xFF\0a", b"a\0b\0,\0"] {
            let mut r = io::BufReader::new(bytes);
            assert!(matches!(start(&mut r), Err(SniffError::NotText { .. })));
        }
        let mut r = io::BufReader::new(&b"\xEF\xBB\xBFname\n"[..]);
        assert_eq!(start(&mut r).unwrap().first, Some(b'n'));
    }
}
