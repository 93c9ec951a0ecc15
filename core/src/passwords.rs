//! Password rules and the single-use links that let a client set a password.

use serde::{Deserialize, Serialize};

use crate::auth::{random_token, token_hash};
use crate::error::Result;
use crate::store::{Record, Store, WriteTx, id_key, index_key};

/// Index of a client's outstanding link tokens, so a password change can revoke them all.
pub const CLIENTID_PASSWORDTOKENS: &str = "clientid_passwordtokens";

/// Longer inputs are refused rather than truncated, to keep hashing cost bounded.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why a new password is refused: the Fluent id of the message for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    TooShort,
    TooLong,
    TooCommon,
}

impl Weakness {
    pub fn message_id(self) -> &'static str {
        match self {
            Weakness::TooShort => "password-error-short",
            Weakness::TooLong => "password-error-long",
            Weakness::TooCommon => "password-error-common",
        }
    }
}

/// Checks a new password: long enough, not absurdly long, and not among the passwords people
/// pick most (zxcvbn's dictionaries, plus the client's own number, name and e-mail).
pub fn check_new_password(
    password: &str,
    min_chars: usize,
    personal: &[&str],
) -> Result<(), Weakness> {
    let n = password.chars().count();
    if n < min_chars {
        return Err(Weakness::TooShort);
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(Weakness::TooLong);
    }
    // zxcvbn is only fed the first 100 characters: anything longer that passed the length rule
    // is not a "most common" password.
    if n <= 100 {
        let estimate = zxcvbn::zxcvbn(password, personal);
        if (estimate.score() as u8) < 2 {
            return Err(Weakness::TooCommon);
        }
    }
    Ok(())
}

/// A one-time password an operator can read out on the phone: 15 letters and digits without
/// look-alikes (no 0/o, 1/l/i), in three groups, about 75 bits.
pub fn generate_one_time_password() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 15];
    getrandom::fill(&mut bytes)
        .map_err(|e| crate::Error::Internal(format!("no randomness: {e}")))?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    Ok(chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// What a client's own data says about their password, for the "too common" check.
pub fn personal_words(c: &crate::model::Client) -> Vec<String> {
    let mut words = vec![c.number.clone(), c.name.clone()];
    words.extend(c.name.split_whitespace().map(str::to_string));
    words.extend(c.username.clone());
    if let Some(e) = &c.email {
        words.push(e.clone());
        words.extend(e.split('@').next().map(str::to_string));
    }
    words
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    /// "Did you forget your password?"
    Reset,
    /// Sent by the operator: "create your password".
    Create,
}

/// A single-use password link. Only the SHA-256 of the token is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordToken {
    #[serde(with = "crate::auth::hex_bytes")]
    pub token_hash: Vec<u8>,
    pub client_id: u64,
    pub purpose: LinkPurpose,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Record for PasswordToken {
    const TREE: &'static str = "password_tokens";
    fn key(&self) -> Vec<u8> {
        self.token_hash.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![(
            CLIENTID_PASSWORDTOKENS,
            index_key(&id_key(self.client_id), &self.token_hash),
        )]
    }
}

/// Deletes every outstanding link token of a client, inside the caller's transaction.
pub fn revoke_client_tokens(tx: &mut WriteTx<'_>, client_id: u64) -> Result<usize> {
    let hashes = tx.index_record_keys(CLIENTID_PASSWORDTOKENS, &id_key(client_id))?;
    let mut n = 0;
    for h in hashes {
        if tx.delete::<PasswordToken>(&h)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Creates a link token valid for `valid_seconds`; returns the token to put in the link. The
/// client's earlier links stop working: only the newest one is valid.
pub fn issue_token(
    store: &Store,
    client_id: u64,
    purpose: LinkPurpose,
    now: i64,
    valid_seconds: i64,
) -> Result<String> {
    let token = random_token()?;
    let record = PasswordToken {
        token_hash: token_hash(&token),
        client_id,
        purpose,
        created_at: now,
        expires_at: now + valid_seconds,
    };
    store.write(|tx| {
        revoke_client_tokens(tx, client_id)?;
        tx.put(&record)
    })?;
    Ok(token)
}

/// Checks a link token and spends it in the same transaction, together with whatever `then`
/// does with the client id (setting the password): of two submissions of one link, exactly
/// one gets here with `Some`.
pub fn consume_token<T>(
    store: &Store,
    token: &str,
    now: i64,
    then: impl FnOnce(&mut WriteTx<'_>, &PasswordToken) -> Result<T>,
) -> Result<Option<T>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let key = token_hash(token);
    store.write(|tx| {
        let Some(found) = tx.get::<PasswordToken>(&key)? else {
            return Ok(None);
        };
        tx.delete::<PasswordToken>(&key)?;
        if found.expires_at <= now {
            return Ok(None);
        }
        then(tx, &found).map(Some)
    })
}

/// The live token for a link, if it is well-formed, known and not expired.
pub fn find_token(store: &Store, token: &str, now: i64) -> Result<Option<PasswordToken>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let key = token_hash(token);
    match store.get::<PasswordToken>(&key)? {
        Some(t) if t.expires_at > now => Ok(Some(t)),
        Some(_) => {
            store.write(|tx| tx.delete::<PasswordToken>(&key).map(|_| ()))?;
            Ok(None)
        }
        None => Ok(None),
    }
}

pub fn revoke_token(store: &Store, token_hash: &[u8]) -> Result<()> {
    store.write(|tx| tx.delete::<PasswordToken>(token_hash).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_refuse_short_long_and_common_but_accept_long_phrases() {
        assert_eq!(check_new_password("abc", 8, &[]), Err(Weakness::TooShort));
        assert_eq!(
            check_new_password("password123", 8, &[]),
            Err(Weakness::TooCommon)
        );
        assert_eq!(
            check_new_password("qwertyuiop", 8, &[]),
            Err(Weakness::TooCommon)
        );
        assert_eq!(
            check_new_password("alice.novakova", 8, &["alice.novakova"]),
            Err(Weakness::TooCommon)
        );
        assert_eq!(check_new_password("Tr4vel-Bicycle-Lamp", 8, &[]), Ok(()));
        let long: String = "river stone ".repeat(10);
        assert_eq!(
            check_new_password(&long, 8, &[]),
            Ok(()),
            "120 characters accepted"
        );
        assert_eq!(
            check_new_password(&"x".repeat(2000), 8, &[]),
            Err(Weakness::TooLong)
        );
    }

    #[test]
    fn tokens_are_single_use_and_expire() {
        let s = Store::in_memory();
        let t = issue_token(&s, 7, LinkPurpose::Reset, 1000, 3600).expect("issue");
        let found = find_token(&s, &t, 1000 + 3599)
            .expect("find")
            .expect("live");
        assert_eq!(found.client_id, 7);
        revoke_token(&s, &found.token_hash).expect("revoke");
        assert!(find_token(&s, &t, 1001).expect("find").is_none(), "used");
        let t = issue_token(&s, 7, LinkPurpose::Reset, 1000, 3600).expect("issue");
        assert!(
            find_token(&s, &t, 1000 + 3600).expect("find").is_none(),
            "expired"
        );
        assert!(find_token(&s, "zz", 0).expect("find").is_none(), "forged");
    }
}
