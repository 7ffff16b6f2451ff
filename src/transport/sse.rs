//! A Server-Sent Events decoder, following the WHATWG framing rules.
//!
//! Why our own and not `sse-stream`: Gemini sends error objects inside an event stream without a
//! `data:` prefix, which a spec decoder silently drops; we surface such lines as [`SseItem::Stray`]
//! so the provider can turn them into errors. It also hands events to a callback as borrowed
//! `&str`s from buffers that are reused for the whole stream, so decoding an event allocates
//! nothing.
//!
//! Rules kept: lines end in LF, CRLF or a lone CR (a CR LF pair may be split across reads); a
//! leading BOM is stripped; `:` lines are comments; a field's value loses one leading space;
//! several `data:` lines join with `\n`; a blank line dispatches; an event without data dispatches
//! nothing; an unfinished event at EOF is dropped; UTF-8 is decoded only once a line is complete.

use crate::error::Error;

/// The default cap on one line (and on one event's data): 16 MiB.
pub(crate) const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

/// Cap on the text kept from lines that are not SSE fields.
const MAX_STRAY: usize = 64 * 1024;

/// One decoded event, borrowed from the decoder's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SseEvent<'a> {
    /// The `event:` field, or `""` when the event had none.
    pub(crate) event: &'a str,
    /// The `data:` lines joined with `\n`.
    pub(crate) data: &'a str,
}

/// What the decoder hands to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SseItem<'a> {
    /// A dispatched event.
    Event(SseEvent<'a>),
    /// Lines of one block that were not SSE fields (such as a bare JSON object), joined with `\n`.
    Stray(&'a str),
}

/// Incremental SSE decoder: feed it bytes as they arrive, then call [`SseDecoder::finish`] at EOF.
#[derive(Debug)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    data: String,
    event: String,
    stray: String,
    has_data: bool,
    skip_lf: bool,
    at_start: bool,
    max_line: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl SseDecoder {
    /// A decoder that refuses lines longer than `max_line` bytes.
    pub(crate) fn new(max_line: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            data: String::new(),
            event: String::new(),
            stray: String::new(),
            has_data: false,
            skip_lf: false,
            at_start: true,
            max_line,
        }
    }

    /// Decodes `chunk`, calling `on` for every event it completes.
    ///
    /// # Errors
    /// `ErrorKind::Decode` for invalid UTF-8 or an oversized line; any error `on` returns.
    pub(crate) fn feed<F>(&mut self, mut chunk: &[u8], on: &mut F) -> Result<(), Error>
    where
        F: FnMut(SseItem<'_>) -> Result<(), Error>,
    {
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while let Some(i) = memchr::memchr2(b'\n', b'\r', chunk) {
            let ended_by_cr = chunk[i] == b'\r';
            if self.line.is_empty() {
                self.check_len(i)?;
                self.process_line(&chunk[..i], on)?;
            } else {
                self.check_len(self.line.len() + i)?;
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&chunk[..i]);
                let result = self.process_line(&line, on);
                line.clear();
                self.line = line;
                result?;
            }
            chunk = &chunk[i + 1..];
            if ended_by_cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        if !chunk.is_empty() {
            self.check_len(self.line.len() + chunk.len())?;
            self.line.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Ends the stream: drops an unfinished event, and hands over any stray text still held
    /// (including an unterminated last line that is not an SSE field).
    ///
    /// # Errors
    /// As for [`SseDecoder::feed`].
    pub(crate) fn finish<F>(&mut self, on: &mut F) -> Result<(), Error>
    where
        F: FnMut(SseItem<'_>) -> Result<(), Error>,
    {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, on)?;
        }
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        if !self.stray.is_empty() {
            on(SseItem::Stray(&self.stray))?;
            self.stray.clear();
        }
        Ok(())
    }

    fn check_len(&self, len: usize) -> Result<(), Error> {
        if len > self.max_line {
            return Err(Error::decode(format!(
                "event stream line exceeds {} bytes",
                self.max_line
            )));
        }
        Ok(())
    }

    fn process_line<F>(&mut self, mut line: &[u8], on: &mut F) -> Result<(), Error>
    where
        F: FnMut(SseItem<'_>) -> Result<(), Error>,
    {
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            return self.dispatch(on);
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                let value = utf8(value)?;
                if self.has_data {
                    self.check_len(self.data.len() + 1 + value.len())?;
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.push_str(utf8(value)?);
            }
            b"id" | b"retry" => {}
            _ => {
                if self.stray.len() + line.len() < MAX_STRAY {
                    if !self.stray.is_empty() {
                        self.stray.push('\n');
                    }
                    self.stray.push_str(&String::from_utf8_lossy(line));
                }
            }
        }
        Ok(())
    }

    fn dispatch<F>(&mut self, on: &mut F) -> Result<(), Error>
    where
        F: FnMut(SseItem<'_>) -> Result<(), Error>,
    {
        if !self.stray.is_empty() {
            let result = on(SseItem::Stray(&self.stray));
            self.stray.clear();
            result?;
        }
        if self.has_data {
            self.has_data = false;
            let result = on(SseItem::Event(SseEvent {
                event: &self.event,
                data: &self.data,
            }));
            self.data.clear();
            self.event.clear();
            return result;
        }
        self.event.clear();
        Ok(())
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes)
        .map_err(|e| Error::decode(format!("invalid UTF-8 in event stream: {e}")))
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
