//! What a figure file says about itself: the settings it was made with (JSON) and the
//! `pathscope` command that makes it again. PNG keeps them in iTXt chunks, SVG in its
//! `<metadata>` element, PDF in the document information dictionary (`/Subject` holds
//! the command, so `pdfinfo` shows it). [`FigureMetadata::read`] reads any of the three.

use super::ExportError;

pub const KEY_COMMAND: &str = "pathscope:command";
pub const KEY_SETTINGS: &str = "pathscope:settings";
/// The SVG metadata namespace.
pub const SVG_NS: &str = "https://github.com/pathscope/pathscope/figure";

/// The name and version that made a file.
pub fn software() -> String {
    format!("pathscope {}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct FigureMetadata {
    pub title: String,
    /// A shell command line that regenerates the figure.
    pub command: String,
    pub settings: serde_json::Value,
}

impl FigureMetadata {
    /// Key–value pairs as the PNG writer stores them.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Title", self.title.clone()),
            ("Software", software()),
            (KEY_COMMAND, self.command.clone()),
            (KEY_SETTINGS, self.settings.to_string()),
        ]
    }

    fn from_parts(
        title: Option<String>,
        command: Option<String>,
        settings: Option<String>,
    ) -> Result<Self, ExportError> {
        let missing = |what: &str| ExportError::Metadata(format!("no {what} in the file's metadata"));
        let settings = settings.ok_or_else(|| missing("settings"))?;
        Ok(Self {
            title: title.unwrap_or_default(),
            command: command.ok_or_else(|| missing("command"))?,
            settings: serde_json::from_str(&settings)
                .map_err(|e| ExportError::Metadata(format!("the settings are not JSON: {e}")))?,
        })
    }

    /// Reads the metadata of a PNG, SVG or PDF figure written by this module.
    pub fn read(bytes: &[u8]) -> Result<Self, ExportError> {
        if bytes.starts_with(b"\x89PNG") {
            read_png(bytes)
        } else if bytes.starts_with(b"%PDF") {
            read_pdf(bytes)
        } else if bytes.windows(4).take(4096).any(|w| w == b"<svg") {
            read_svg(bytes)
        } else {
            Err(ExportError::Metadata("not a PNG, SVG or PDF file".into()))
        }
    }
}

fn read_png(bytes: &[u8]) -> Result<FigureMetadata, ExportError> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder
        .read_info()
        .map_err(|e| ExportError::Metadata(format!("PNG: {e}")))?;
    let get = |key: &str| {
        reader
            .info()
            .utf8_text
            .iter()
            .find(|c| c.keyword == key)
            .and_then(|c| c.get_text().ok())
    };
    FigureMetadata::from_parts(get("Title"), get(KEY_COMMAND), get(KEY_SETTINGS))
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn read_svg(bytes: &[u8]) -> Result<FigureMetadata, ExportError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ExportError::Metadata(format!("SVG: {e}")))?;
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(xml_unescape(&text[start..end]))
    };
    FigureMetadata::from_parts(
        element("title"),
        element("pathscope:command"),
        element("pathscope:settings"),
    )
}

/// Decodes the PDF string that starts at `s` (literal `( … )` or hex `< … >`; UTF-16BE
/// with a byte-order mark, else PDFDocEncoding, whose printable ASCII we write).
fn pdf_string(s: &[u8]) -> Option<String> {
    let bytes = match s.first()? {
        b'(' => {
            let mut out = Vec::new();
            let mut depth = 0usize;
            let mut i = 1;
            while i < s.len() {
                let b = s[i];
                match b {
                    b'\\' => {
                        i += 1;
                        let e = *s.get(i)?;
                        match e {
                            b'n' => out.push(b'\n'),
                            b'r' => out.push(b'\r'),
                            b't' => out.push(b'\t'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'0'..=b'7' => {
                                let mut v = 0u32;
                                let mut n = 0;
                                while n < 3 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                                    v = v * 8 + (s[i] - b'0') as u32;
                                    i += 1;
                                    n += 1;
                                }
                                out.push(v as u8);
                                continue;
                            }
                            other => out.push(other),
                        }
                    }
                    b'(' => {
                        depth += 1;
                        out.push(b);
                    }
                    b')' if depth == 0 => break,
                    b')' => {
                        depth -= 1;
                        out.push(b);
                    }
                    _ => out.push(b),
                }
                i += 1;
            }
            out
        }
        b'<' => {
            let end = s.iter().position(|&b| b == b'>')?;
            let hex: Vec<u8> = s[1..end].iter().copied().filter(|b| b.is_ascii_hexdigit()).collect();
            hex.chunks(2)
                .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
                .collect::<Option<Vec<u8>>>()?
        }
        _ => return None,
    };
    if bytes.starts_with(&[0xfe, 0xff]) {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16(&units).ok()
    } else {
        Some(bytes.iter().map(|&b| b as char).collect())
    }
}

fn read_pdf(bytes: &[u8]) -> Result<FigureMetadata, ExportError> {
    let value = |key: &str| {
        let needle = format!("/{key}");
        let at = bytes.windows(needle.len()).rposition(|w| w == needle.as_bytes())? + needle.len();
        let rest = &bytes[at..];
        let skip = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        pdf_string(&rest[skip..])
    };
    FigureMetadata::from_parts(value("Title"), value("Subject"), value("PathscopeSettings"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_strings_decode() {
        assert_eq!(pdf_string(b"(a \\(b\\) (c) \\\\ \\101)").unwrap(), "a (b) (c) \\ A");
        assert_eq!(pdf_string(b"<FEFF00E9 0041>").unwrap(), "éA");
        assert!(pdf_string(b"x").is_none());
    }

    #[test]
    fn xml_escaping_round_trips() {
        let s = "a<b & \"c\" 'd'>";
        assert_eq!(xml_unescape(&xml_escape(s)), s);
        assert!(!xml_escape(s).contains('<'));
    }
}

/// `args` as one POSIX shell command line: arguments with anything but safe characters
/// are single-quoted.
pub fn shell_command(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let safe = !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c));
            if safe {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod command_tests {
    #[test]
    fn shell_quoting() {
        let args: Vec<String> = ["pathscope", "figure", "--out", "my fig.png", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            super::shell_command(&args),
            r"pathscope figure --out 'my fig.png' 'it'\''s'"
        );
    }
}
