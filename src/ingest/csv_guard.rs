//! A watch over the raw bytes the CSV parser reads: it follows the same quoting rules
//! as `csv` (RFC 4180, doubled quotes) so it knows, before the parser buffers anything,
//! when a field or row grows past its limit and when the input ends inside a quote.
//! Either is an I/O error carrying a [`Broken`] (line and reason), so the importer stops
//! rather than skip a "row" that is really the rest of the file.

use super::limits::{MAX_FIELD_BYTES, MAX_FIELDS, MAX_RECORD_BYTES};
use std::io::{self, Read};

/// Why the reading stopped, and the line it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(super) struct Broken {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field (or of a row).
    Start,
    Unquoted,
    Quoted,
    /// Just after a quote inside a quoted field: a second quote is an escaped one.
    QuoteInQuoted,
}

#[derive(Debug)]
pub(super) struct CsvGuard<R> {
    inner: R,
    state: State,
    line: u64,
    row_line: u64,
    quote_line: u64,
    field_bytes: usize,
    row_bytes: usize,
    fields: usize,
    failed: bool,
}

impl<R: Read> CsvGuard<R> {
    /// `line` is the line of the first byte `inner` yields.
    pub fn new(inner: R, line: u64) -> Self {
        Self {
            inner,
            state: State::Start,
            line,
            row_line: line,
            quote_line: line,
            field_bytes: 0,
            row_bytes: 0,
            fields: 1,
            failed: false,
        }
    }

    /// The line the input has been read to.
    pub fn line(&self) -> u64 {
        self.line
    }

    fn broken(&mut self, line: u64, message: String) -> io::Error {
        self.failed = true;
        io::Error::new(io::ErrorKind::InvalidData, Broken { line, message })
    }

    fn end_field(&mut self) {
        self.state = State::Start;
        self.field_bytes = 0;
        self.fields += 1;
    }

    fn end_row(&mut self) {
        self.state = State::Start;
        self.field_bytes = 0;
        self.row_bytes = 0;
        self.fields = 1;
        self.row_line = self.line;
    }

    /// Follows `bytes`; the first limit crossed is the error.
    fn watch(&mut self, bytes: &[u8]) -> io::Result<()> {
        for &b in bytes {
            if b == b'\n' {
                self.line += 1;
            }
            let delimiter = match self.state {
                State::Start => match b {
                    b'"' => {
                        self.state = State::Quoted;
                        self.quote_line = self.line;
                        false
                    }
                    b',' | b'\n' | b'\r' => true,
                    _ => {
                        self.state = State::Unquoted;
                        false
                    }
                },
                State::Unquoted => matches!(b, b',' | b'\n' | b'\r'),
                State::Quoted => {
                    if b == b'"' {
                        self.state = State::QuoteInQuoted;
                    }
                    false
                }
                State::QuoteInQuoted => match b {
                    b'"' => {
                        self.state = State::Quoted;
                        false
                    }
                    b',' | b'\n' | b'\r' => true,
                    _ => {
                        self.state = State::Unquoted;
                        false
                    }
                },
            };
            if delimiter {
                if b == b',' {
                    self.end_field();
                    if self.fields > MAX_FIELDS {
                        let msg = format!("a row of more than {MAX_FIELDS} fields (columns)");
                        return Err(self.broken(self.row_line, msg));
                    }
                } else {
                    self.end_row();
                }
                continue;
            }
            self.field_bytes += 1;
            self.row_bytes += 1;
            if self.field_bytes > MAX_FIELD_BYTES {
                let (line, msg) = if self.state == State::Quoted {
                    (
                        self.quote_line,
                        format!(
                            "the quoted field opened on this line runs past {} MiB: an unclosed quote?",
                            MAX_FIELD_BYTES >> 20
                        ),
                    )
                } else {
                    let mib = MAX_FIELD_BYTES >> 20;
                    (self.row_line, format!("a field larger than {mib} MiB"))
                };
                return Err(self.broken(line, msg));
            }
            if self.row_bytes > MAX_RECORD_BYTES {
                let msg = format!("a row larger than {} MiB", MAX_RECORD_BYTES >> 20);
                return Err(self.broken(self.row_line, msg));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for CsvGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(self.broken(self.line, "reading stopped at an earlier error".into()));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let msg = format!("the input cannot be read past about this line: {e}");
                return Err(self.broken(self.line, msg));
            }
        };
        if n == 0 && buf.is_empty() {
            return Ok(0);
        }
        if n == 0 && self.state == State::Quoted {
            let msg =
                "unclosed quote: the quoted field opened on this line runs to the end of the file"
                    .into();
            return Err(self.broken(self.quote_line, msg));
        }
        self.watch(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8]) -> Result<Vec<u8>, (u64, String)> {
        let mut out = Vec::new();
        CsvGuard::new(text, 1).read_to_end(&mut out).map_err(|e| {
            let b = e
                .get_ref()
                .and_then(|e| e.downcast_ref::<Broken>())
                .unwrap();
            (b.line, b.message.clone())
        })?;
        Ok(out)
    }

    #[test]
    fn quoting_follows_the_csv_rules() {
        let ok = b"a,b\n\"x, \"\"y\"\"\nz\",2\n5\" pipe,\"q\"r\n";
        assert_eq!(read_all(ok).unwrap(), ok);
        let (line, msg) = read_all(b"a,b\n1,2\n\"open,3\n4,5\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(msg.contains("unclosed quote"), "{msg}");
    }

    #[test]
    fn fields_and_rows_are_capped() {
        let mut big = b"a\n1\n\"".to_vec();
        big.resize(MAX_FIELD_BYTES + 10, b'x');
        let (line, msg) = read_all(&big).unwrap_err();
        assert_eq!(line, 3);
        assert!(msg.contains("unclosed quote"), "{msg}");
        let wide = vec![b','; MAX_FIELDS + 1];
        assert!(read_all(&wide).unwrap_err().1.contains("fields"));
    }
}
