//! Recipients' numbers, checked with the `phonenumber` crate (libphonenumber's metadata):
//! international numbers as typed, national ones in `sms_default_country`.

use std::str::FromStr;

use phonenumber::Mode;
use phonenumber::country::Id;

/// Longest number a form may carry.
pub const MAX_INPUT: usize = 40;

/// The country of `sms_default_country` (`CZ`), if it names one.
pub fn country(setting: &str) -> Option<Id> {
    let code = setting.trim().to_ascii_uppercase();
    if code.is_empty() {
        return None;
    }
    Id::from_str(&code).ok()
}

/// The number in E.164 (`+420601123456`), or `None` when it is not a valid number.
pub fn normalize(input: &str, default_country: Option<Id>) -> Option<String> {
    let input = input.trim();
    if input.is_empty() || input.len() > MAX_INPUT {
        return None;
    }
    // Only what people write in a number: digits, spaces, + ( ) - . /
    if !input
        .chars()
        .all(|c| c.is_ascii_digit() || " +()-./".contains(c))
    {
        return None;
    }
    let number = phonenumber::parse(default_country, input).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    Some(number.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_numbers_take_the_default_country() {
        let cz = country("cz");
        assert!(cz.is_some());
        assert_eq!(
            normalize("601 123 456", cz).as_deref(),
            Some("+420601123456")
        );
        assert_eq!(
            normalize("+420 601 123 456", None).as_deref(),
            Some("+420601123456")
        );
        assert_eq!(
            normalize("+44 7911 123456", cz).as_deref(),
            Some("+447911123456")
        );
        // Without a default country a national number is not enough.
        assert_eq!(normalize("601123456", None), None);
        for bad in ["", "12", "abc", "+420 1", "601123456; rm", &"1".repeat(41)] {
            assert_eq!(normalize(bad, cz), None, "{bad}");
        }
        assert_eq!(country("XX"), None);
        assert_eq!(country(""), None);
    }
}
