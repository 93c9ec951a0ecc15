//! How many characters and parts a text takes: GSM 03.38 (7-bit default alphabet, with the
//! extension table's characters counting twice) when every character is in it, else UCS-2
//! (UTF-16 code units, so a character outside the BMP counts twice).

use serde::{Deserialize, Serialize};

/// The GSM 03.38 default alphabet (basic character set).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the extension table: each takes an escape and its code (two septets).
const EXTENSION: &str = "\u{c}^{}\\[~]|€";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
        }
    }
    /// Units one message holds alone, and one part of a concatenated message (the UDH takes
    /// 6 bytes).
    fn capacity(self) -> (usize, usize) {
        match self {
            Encoding::Gsm7 => (160, 153),
            Encoding::Ucs2 => (70, 67),
        }
    }
}

/// A text's count: encoding, units (septets or UTF-16 units), parts, and what the last part
/// still takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Count {
    pub encoding: Encoding,
    pub units: usize,
    pub parts: usize,
    pub left_in_part: usize,
}

/// Septets a character takes in GSM 03.38, or `None` when it is not in the alphabet.
pub fn septets(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

pub fn count(text: &str) -> Count {
    let gsm: Option<usize> = text.chars().map(septets).sum();
    let (encoding, units) = match gsm {
        Some(n) => (Encoding::Gsm7, n),
        None => (Encoding::Ucs2, text.encode_utf16().count()),
    };
    let (single, multi) = encoding.capacity();
    let (parts, left_in_part) = if units == 0 {
        (0, single)
    } else if units <= single {
        (1, single - units)
    } else {
        let mut parts = 1;
        let mut used = 0;
        for w in text.chars().map(|ch| width(encoding, ch)) {
            if used + w > multi {
                parts += 1;
                used = 0;
            }
            used += w;
        }
        (parts, multi - used)
    };
    Count {
        encoding,
        units,
        parts,
        left_in_part,
    }
}

fn width(encoding: Encoding, ch: char) -> usize {
    match encoding {
        Encoding::Gsm7 => septets(ch).unwrap_or(1),
        Encoding::Ucs2 => ch.len_utf16(),
    }
}

/// Splits a text into the parts of a concatenated message, never inside a character (nor
/// between an escape and its code). One part when it fits a single message.
pub fn split(text: &str) -> Vec<String> {
    let c = count(text);
    let (single, multi) = c.encoding.capacity();
    if c.units <= single {
        return vec![text.to_string()];
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for ch in text.chars() {
        let w = width(c.encoding, ch);
        if used + w > multi {
            parts.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(ch);
        used += w;
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_and_ucs2_counts() {
        let c = count("Hello");
        assert_eq!(
            (c.encoding, c.units, c.parts, c.left_in_part),
            (Encoding::Gsm7, 5, 1, 155)
        );
        assert_eq!(count(&"a".repeat(160)).parts, 1);
        let c = count(&"a".repeat(161));
        assert_eq!((c.parts, c.left_in_part), (2, 145));
        // The euro sign is in the extension table: two septets.
        assert_eq!(count("€").units, 2);
        assert_eq!(count(&"€".repeat(80)).parts, 1);
        assert_eq!(count(&"€".repeat(81)).parts, 2);
        // Czech letters with háček are not GSM: UCS-2.
        let c = count("Dobrý den, Šárko");
        assert_eq!((c.encoding, c.units, c.parts), (Encoding::Ucs2, 16, 1));
        assert_eq!(count(&"ž".repeat(70)).parts, 1);
        assert_eq!(count(&"ž".repeat(71)).parts, 2);
        // An emoji is two UTF-16 units.
        assert_eq!(count("🙂").units, 2);
        assert_eq!(count("").parts, 0);
    }

    #[test]
    fn splitting_keeps_every_character_and_the_part_sizes() {
        let text = format!("{}€€{}", "x".repeat(152), "y".repeat(200));
        let parts = split(&text);
        assert_eq!(parts.concat(), text);
        assert_eq!(parts.len(), count(&text).parts);
        // The escape pair is not cut: the first part stops before the euro sign.
        assert_eq!(parts[0], "x".repeat(152));
        let u = "ř".repeat(140);
        let parts = split(&u);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.encode_utf16().count() <= 67));
        assert_eq!(split("short"), vec!["short".to_string()]);
    }
}
