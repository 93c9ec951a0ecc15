//! Whether a client may use the portal at all. Two things can take access away, kept apart so
//! neither undoes the other:
//!
//! - **the operator** (`portico client disable`): a block in its own tree, beside credentials
//!   and lockouts, that no import touches; `portico client enable` lifts it;
//! - **the billing system** (`"portal_access": false` on the client record of an import): a field
//!   of the client record, so the next import that gives `true` (or leaves it out) lifts it.
//!
//! A client is disabled while either one is there. Taking access away ends the client's
//! sessions, revokes their password links and cancels link mails still in the outbox, in one
//! store transaction; the session guard and the login check the state again on every request.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Client;
use crate::store::{Record, Store, WriteTx, id_key};

/// The operator's block on a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessBlock {
    pub client_id: u64,
    /// Unix seconds when the operator disabled the client.
    pub since: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

impl Record for AccessBlock {
    const TREE: &'static str = "clientid_accessblock";
    fn key(&self) -> Vec<u8> {
        id_key(self.client_id)
    }
}

/// A client's access, with what takes it away.
#[derive(Debug, Clone)]
pub struct Access {
    pub operator: Option<AccessBlock>,
    /// The last import gave `"portal_access": false`.
    pub import: bool,
}

impl Access {
    pub fn disabled(&self) -> bool {
        self.operator.is_some() || self.import
    }
}

pub fn access(store: &Store, client: &Client) -> Result<Access> {
    Ok(Access {
        operator: store.get_id::<AccessBlock>(client.id)?,
        import: !client.portal_access,
    })
}

/// Whether the client may not log in or keep a session.
pub fn is_disabled(store: &Store, client: &Client) -> Result<bool> {
    Ok(!client.portal_access || store.get_id::<AccessBlock>(client.id)?.is_some())
}

/// What ending a client's access ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct CutOff {
    pub sessions: usize,
    pub links: usize,
    pub mails: usize,
}

/// Ends every session of the client, revokes their password links and cancels their link mails
/// still waiting in the outbox, inside the caller's transaction.
pub fn cut_off_in(tx: &mut WriteTx<'_>, client_id: u64) -> Result<CutOff> {
    Ok(CutOff {
        sessions: crate::auth::end_sessions_in(tx, client_id, None)?,
        links: crate::passwords::revoke_client_tokens(tx, client_id)?,
        mails: crate::mail::cancel_link_jobs(tx, client_id)?,
    })
}

/// Stores the operator's block (replacing the reason of an earlier one, keeping its time) and
/// cuts the client off, in one flushed transaction. Returns the block as stored, whether the
/// client was blocked by the operator already, and what was ended.
pub fn disable(
    store: &Store,
    client_id: u64,
    reason: Option<String>,
    now: i64,
) -> Result<(AccessBlock, bool, CutOff)> {
    store.write(|tx| {
        let earlier = tx.get::<AccessBlock>(&id_key(client_id))?;
        let block = AccessBlock {
            client_id,
            since: earlier.as_ref().map_or(now, |b| b.since),
            reason,
        };
        tx.put(&block)?;
        let cut = cut_off_in(tx, client_id)?;
        Ok((block, earlier.is_some(), cut))
    })
}

/// Lifts the operator's block (flushed); returns it when there was one.
pub fn enable(store: &Store, client_id: u64) -> Result<Option<AccessBlock>> {
    store.write(|tx| {
        let key = id_key(client_id);
        let earlier = tx.get::<AccessBlock>(&key)?;
        if earlier.is_some() {
            tx.delete::<AccessBlock>(&key)?;
        }
        Ok(earlier)
    })
}
