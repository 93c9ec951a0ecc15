//! Rendered pages kept per session: a page viewed again while nothing it was made from has
//! changed is sent as it was rendered, without reading the store or rendering the theme.
//!
//! What a page is made from, besides its request, is summed up in a [`Stamp`]: the store's write
//! generation (every write to any tree moves it, so an import, a setting, a message, a ticket or
//! a login anywhere drops every kept page), the themes' and the scripts' generations and the
//! day. A page is kept under its session, language and URI, tagged with the stamp read *before*
//! the request read anything, so a write that races the render leaves the page stale at once.
//! A kept page is also never older than [`MAX_AGE`], for what changes with the clock alone (a
//! script's `now()`, a dynamic plugin's own state).
//!
//! Only routes that opt in are cached ([`cached`]; core's Information and Services pages, and
//! [`crate::registry::Registrar::cached_routes`] for plugins), only `GET`, only for a signed-in
//! client who may see tabs, only a `200` page whose response sets no cookie. Each hit still
//! checks the session (expiry, the client's access) like any other request. The cache holds at
//! most its capacity in bytes (`page_cache_mb`; 0 turns it off).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocket::Data;
use rocket::http::uri::Origin;
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::response::Response;
use rocket::route::{self, Handler, Route};

use super::guards;
use crate::portal::Portal;

/// The longest a kept page is served.
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// Bytes a kept page costs beyond its key and HTML (map entry, order entry, allocations).
const ENTRY_OVERHEAD: usize = 96;

/// What a page was rendered from besides its request. Every part only grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    store: u64,
    themes: u64,
    scripts: u64,
    day: chrono::NaiveDate,
}

impl Stamp {
    pub fn now(portal: &Portal) -> Stamp {
        Stamp {
            store: portal.store.write_generation(),
            themes: portal.themes.generation(),
            scripts: portal.scripts.generation(),
            day: portal.clock.today(),
        }
    }

    /// Whether nothing in `self` is older than in `other`.
    fn not_older_than(&self, other: &Stamp) -> bool {
        self.store >= other.store
            && self.themes >= other.themes
            && self.scripts >= other.scripts
            && self.day >= other.day
    }
}

/// A page that may be kept once rendered: set by [`Cached`] on a miss, taken by the response
/// fairing ([`super::page::RenderedPages`]).
pub struct Ticket {
    key: Vec<u8>,
    client_id: u64,
    stamp: Stamp,
}

struct Kept {
    client_id: u64,
    html: Arc<[u8]>,
    at: Instant,
    seq: u64,
}

#[derive(Default)]
struct Shelf {
    /// The stamp of every kept page (older ones were dropped when it moved on).
    stamp: Option<Stamp>,
    pages: HashMap<Vec<u8>, Kept>,
    /// Keys in the order they were kept, with the sequence number they were kept under (a key
    /// kept again leaves an older entry here, skipped when it comes up).
    order: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    seq: u64,
}

/// The kept pages, at most `capacity` bytes of them.
pub struct PageCache {
    capacity: usize,
    kept: Mutex<Shelf>,
    counts: Counts,
}

/// What the cache did since start (the log's last line at shutdown; `bench/run.sh` prints it).
#[derive(Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    kept: AtomicU64,
}

impl PageCache {
    pub fn new(capacity_bytes: u64) -> PageCache {
        PageCache {
            capacity: usize::try_from(capacity_bytes).unwrap_or(usize::MAX),
            kept: Mutex::default(),
            counts: Counts::default(),
        }
    }

    /// One line on what the cache did since start.
    pub fn summary(&self) -> String {
        format!(
            "page cache: {} pages sent as kept, {} rendered for a request that could keep them, {} kept",
            self.counts.hits.load(Ordering::Relaxed),
            self.counts.misses.load(Ordering::Relaxed),
            self.counts.kept.load(Ordering::Relaxed),
        )
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Bytes held now (keys, pages and overhead).
    pub fn bytes(&self) -> usize {
        self.kept.lock().map(|k| k.bytes).unwrap_or(0)
    }

    /// The page kept under `key` for `client_id`, if it was rendered at `stamp` no longer than
    /// [`MAX_AGE`] before `now`.
    pub fn get(&self, key: &[u8], client_id: u64, stamp: Stamp, now: Instant) -> Option<Arc<[u8]>> {
        let kept = self.kept.lock().ok()?;
        if kept.stamp != Some(stamp) {
            return None;
        }
        let page = kept.pages.get(key)?;
        let fresh = page.client_id == client_id && now.saturating_duration_since(page.at) < MAX_AGE;
        fresh.then(|| page.html.clone())
    }

    /// Keeps a rendered page. A page of an older stamp than the kept ones is dropped; one of a
    /// newer stamp drops them all. The oldest pages go first when the capacity is reached.
    pub fn put(&self, ticket: &Ticket, html: Arc<[u8]>, now: Instant) {
        let size = ticket.key.len() + html.len() + ENTRY_OVERHEAD;
        if size > self.capacity / 4 {
            return;
        }
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        let kept = &mut *kept;
        match kept.stamp {
            Some(s) if s == ticket.stamp => {}
            Some(s) if !ticket.stamp.not_older_than(&s) => return,
            _ => {
                kept.pages.clear();
                kept.order.clear();
                kept.bytes = 0;
                kept.stamp = Some(ticket.stamp);
            }
        }
        if let Some(old) = kept.pages.remove(&ticket.key) {
            kept.bytes -= ticket.key.len() + old.html.len() + ENTRY_OVERHEAD;
        }
        while kept.bytes + size > self.capacity {
            let Some((seq, key)) = kept.order.pop_front() else {
                break;
            };
            if kept.pages.get(&key).is_some_and(|p| p.seq == seq)
                && let Some(gone) = kept.pages.remove(&key)
            {
                kept.bytes -= key.len() + gone.html.len() + ENTRY_OVERHEAD;
            }
        }
        kept.seq += 1;
        let seq = kept.seq;
        kept.order.push_back((seq, ticket.key.clone()));
        kept.pages.insert(
            ticket.key.clone(),
            Kept {
                client_id: ticket.client_id,
                html,
                at: now,
                seq,
            },
        );
        kept.bytes += size;
        self.counts.kept.fetch_add(1, Ordering::Relaxed);
        // Keys kept again leave stale order entries: drop them before they outnumber the pages.
        if kept.order.len() > 2 * kept.pages.len() + 64 {
            let pages = &kept.pages;
            kept.order
                .retain(|(seq, key)| pages.get(key).is_some_and(|p| p.seq == *seq));
        }
    }
}

/// The cache key: the session (its stored hash, never the cookie's token), the page's language
/// and the whole URI with its query.
fn key(session_hash: &[u8], lang: &str, uri: &Origin<'_>) -> Vec<u8> {
    let path = uri.path().as_str();
    let query = uri.query().map_or("", |q| q.as_str());
    let mut key =
        Vec::with_capacity(session_hash.len() + lang.len() + path.len() + query.len() + 3);
    key.extend_from_slice(session_hash);
    key.push(0);
    key.extend_from_slice(lang.as_bytes());
    key.push(0);
    key.extend_from_slice(path.as_bytes());
    key.push(b'?');
    key.extend_from_slice(query.as_bytes());
    key
}

/// `routes` with their `GET` routes answered from the page cache when they can be. Only for
/// pages made from the store, settings, theme, scripts and the day alone, through
/// [`super::Page::render`].
pub fn cached(routes: Vec<Route>) -> Vec<Route> {
    routes
        .into_iter()
        .map(|mut route| {
            if route.method == Method::Get {
                route.handler = Box::new(Cached(route.handler));
            }
            route
        })
        .collect()
}

#[derive(Clone)]
struct Cached(Box<dyn Handler>);

#[rocket::async_trait]
impl Handler for Cached {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        if let Some(portal) = guards::portal(req)
            && portal.page_cache.enabled()
        {
            // Read before the session or anything else: see the module's comment.
            let stamp = Stamp::now(portal);
            // Who `ClientUser` admits (else the route's own guards answer, as without a cache).
            if !guards::maintenance_on(portal)
                && let Some(user) = guards::signed_in(req)
                && !user.session.must_change_password
            {
                let key = key(&user.session.id_hash, guards::request_lang(req), req.uri());
                if let Some(html) =
                    portal
                        .page_cache
                        .get(&key, user.client.id, stamp, Instant::now())
                {
                    portal
                        .page_cache
                        .counts
                        .hits
                        .fetch_add(1, Ordering::Relaxed);
                    return route::Outcome::from(req, super::PageHtml::kept(html));
                }
                portal
                    .page_cache
                    .counts
                    .misses
                    .fetch_add(1, Ordering::Relaxed);
                req.local_cache(|| {
                    Some(Ticket {
                        key,
                        client_id: user.client.id,
                        stamp,
                    })
                });
            }
        }
        self.0.handle(req, data).await
    }
}

/// Called with a page's final response: keeps it when its request took a [`Ticket`], it is a
/// `200` and it sets no cookie. Returns the body to send (the kept bytes, shared).
pub(crate) fn keep(
    req: &Request<'_>,
    res: &Response<'_>,
    status: Status,
    html: String,
) -> Result<Arc<[u8]>, String> {
    let ticket = req.local_cache(|| None::<Ticket>);
    let Some(ticket) = ticket else {
        return Err(html);
    };
    let Some(portal) = guards::portal(req) else {
        return Err(html);
    };
    if status != Status::Ok || res.headers().contains("Set-Cookie") {
        return Err(html);
    }
    let html: Arc<[u8]> = html.into_bytes().into();
    portal.page_cache.put(ticket, html.clone(), Instant::now());
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(store: u64) -> Stamp {
        Stamp {
            store,
            themes: 0,
            scripts: 0,
            day: chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        }
    }

    fn ticket(key: &str, client_id: u64, stamp: Stamp) -> Ticket {
        Ticket {
            key: key.as_bytes().to_vec(),
            client_id,
            stamp,
        }
    }

    fn page(text: &str) -> Arc<[u8]> {
        text.as_bytes().into()
    }

    #[test]
    fn a_page_is_served_only_to_its_client_at_its_stamp_and_age() {
        let cache = PageCache::new(1 << 20);
        let at = Instant::now();
        cache.put(&ticket("s1/en/", 7, stamp(5)), page("alice"), at);
        assert_eq!(
            cache.get(b"s1/en/", 7, stamp(5), at).as_deref(),
            Some(&b"alice"[..])
        );
        // Another client, another key, a later write, too old: nothing.
        assert!(cache.get(b"s1/en/", 8, stamp(5), at).is_none());
        assert!(cache.get(b"s2/en/", 7, stamp(5), at).is_none());
        assert!(cache.get(b"s1/en/", 7, stamp(6), at).is_none());
        assert!(cache.get(b"s1/en/", 7, stamp(5), at + MAX_AGE).is_none());
        let mut next_day = stamp(5);
        next_day.day = next_day.day.succ_opt().expect("day");
        assert!(cache.get(b"s1/en/", 7, next_day, at).is_none());
    }

    #[test]
    fn a_newer_stamp_drops_the_kept_pages_and_an_older_one_is_not_kept() {
        let cache = PageCache::new(1 << 20);
        let at = Instant::now();
        cache.put(&ticket("a", 1, stamp(5)), page("old"), at);
        cache.put(&ticket("b", 1, stamp(6)), page("new"), at);
        assert!(cache.get(b"a", 1, stamp(5), at).is_none());
        assert!(cache.get(b"a", 1, stamp(6), at).is_none());
        assert_eq!(cache.bytes(), 1 + 3 + ENTRY_OVERHEAD);
        // A render that started before the write finishes after it: not kept.
        cache.put(&ticket("c", 1, stamp(5)), page("late"), at);
        assert!(cache.get(b"c", 1, stamp(5), at).is_none());
        assert!(cache.get(b"b", 1, stamp(6), at).is_some());
    }

    #[test]
    fn the_capacity_holds_and_the_oldest_pages_go_first() {
        let one = 2 + 100 + ENTRY_OVERHEAD;
        let cache = PageCache::new(4 * one as u64);
        let at = Instant::now();
        let body = "x".repeat(100);
        for i in 0..10 {
            cache.put(&ticket(&format!("{i:02}"), 1, stamp(1)), page(&body), at);
            assert!(cache.bytes() <= 4 * one, "{} after {i}", cache.bytes());
        }
        assert!(cache.get(b"05", 1, stamp(1), at).is_none());
        for i in 6..10 {
            assert!(
                cache
                    .get(format!("{i:02}").as_bytes(), 1, stamp(1), at)
                    .is_some()
            );
        }
        // The same key kept again many times: one page, and the order list stays short.
        for _ in 0..1000 {
            cache.put(&ticket("09", 1, stamp(1)), page(&body), at);
        }
        assert_eq!(cache.bytes(), 4 * one);
        let kept = cache.kept.lock().expect("lock");
        assert!(kept.order.len() <= 2 * kept.pages.len() + 65);
    }

    #[test]
    fn a_page_larger_than_a_quarter_of_the_cache_is_not_kept_and_zero_is_off() {
        let cache = PageCache::new(1000);
        cache.put(
            &ticket("k", 1, stamp(1)),
            page(&"x".repeat(300)),
            Instant::now(),
        );
        assert_eq!(cache.bytes(), 0);
        assert!(!PageCache::new(0).enabled());
    }
}
