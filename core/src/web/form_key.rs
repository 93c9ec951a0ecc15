//! Keys that make a form's submission idempotent: each rendered form carries a fresh key, a
//! second submission of the same form (a double click, a reload) carries the same one, and the
//! handler spends the key in the transaction that does the work.

/// A fresh key: 32 hex digits of randomness.
pub fn new_form_key() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: a key that is still unique per process and moment.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("t{t:x}");
    }
    hex::encode(b)
}

/// Whether a submitted key has a key's shape (16 to 64 letters, digits, `-` or `_`); a form
/// with any other is treated as one without a key.
pub fn is_form_key(key: &str) -> bool {
    (16..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_keys_are_valid_and_differ() {
        let (a, b) = (new_form_key(), new_form_key());
        assert!(is_form_key(&a) && is_form_key(&b));
        assert_ne!(a, b);
        assert!(!is_form_key("short"));
        assert!(!is_form_key(&"k".repeat(65)));
        assert!(!is_form_key("with space in the key!!"));
    }
}
