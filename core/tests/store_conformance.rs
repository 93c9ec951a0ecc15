//! The storage conformance suite: every backend must pass all of it. sled runs on a real temp
//! folder; the in-memory backend runs beside it so code above the store can be unit-tested.

use std::sync::Arc;

use portico_core::Error;
use portico_core::internal::model::{Client, Message};
use portico_core::internal::store::{
    MemoryBackend, Migration, MigrationFn, Op, Record, SEP, SledBackend, Store, id_key,
};

struct Fixture {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

fn backends() -> Vec<(&'static str, Fixture)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = SledBackend::open(dir.path()).expect("open sled");
    vec![
        (
            "sled",
            Fixture {
                store: Store::new(Arc::new(sled)),
                _dir: Some(dir),
            },
        ),
        (
            "memory",
            Fixture {
                store: Store::new(Arc::new(MemoryBackend::default())),
                _dir: None,
            },
        ),
    ]
}

fn op(tree: &str, key: &[u8], value: Option<&[u8]>) -> Op {
    Op {
        tree: tree.to_string().into(),
        key: key.to_vec(),
        value: value.map(<[u8]>::to_vec),
    }
}

fn client(id: u64, number: &str, group: u64, username: Option<&str>) -> Client {
    Client {
        id,
        number: number.into(),
        username: username.map(Into::into),
        name: format!("Client {id}"),
        company: None,
        mailing_address: Default::default(),
        invoicing_address: None,
        email: None,
        phone: None,
        mobile: None,
        invoice_group_id: group,
        language: None,
        portal_access: true,
    }
}

#[test]
fn raw_get_apply_and_remove() {
    for (name, f) in backends() {
        let b = f.store.backend();
        assert_eq!(b.get("t", b"k").expect("get"), None, "{name}");
        b.apply(&[op("t", b"k", Some(b"v"))]).expect("apply");
        assert_eq!(
            b.get("t", b"k").expect("get").as_deref(),
            Some(&b"v"[..]),
            "{name}"
        );
        b.apply(&[op("t", b"k", None)]).expect("apply");
        assert_eq!(b.get("t", b"k").expect("get"), None, "{name}");
        assert_eq!(b.len("t").expect("len"), 0, "{name}");
    }
}

#[test]
fn big_endian_keys_scan_in_numeric_order() {
    for (name, f) in backends() {
        let b = f.store.backend();
        let ops: Vec<Op> = [300u64, 2, 70_000, 1, 256]
            .iter()
            .map(|i| op("n", &id_key(*i), Some(b"x")))
            .collect();
        b.apply(&ops).expect("apply");
        let keys: Vec<u64> = b
            .scan_prefix("n", &[])
            .expect("scan")
            .into_iter()
            .map(|(k, _)| u64::from_be_bytes(k.try_into().expect("8 bytes")))
            .collect();
        assert_eq!(keys, vec![1, 2, 256, 300, 70_000], "{name}");
    }
}

#[test]
fn prefix_scan_stops_at_the_separator() {
    for (name, f) in backends() {
        let b = f.store.backend();
        let mut k1 = b"ab".to_vec();
        k1.push(SEP);
        k1.push(1);
        let mut k2 = b"abc".to_vec();
        k2.push(SEP);
        k2.push(2);
        b.apply(&[op("p", &k1, Some(b"1")), op("p", &k2, Some(b"2"))])
            .expect("apply");
        let mut prefix = b"ab".to_vec();
        prefix.push(SEP);
        let hits = b.scan_prefix("p", &prefix).expect("scan");
        assert_eq!(hits.len(), 1, "{name}: `ab` must not match `abc`");
    }
}

#[test]
fn one_apply_spans_trees() {
    for (name, f) in backends() {
        let b = f.store.backend();
        b.apply(&[
            op("a", b"1", Some(b"x")),
            op("b", b"1", Some(b"y")),
            op("a", b"2", Some(b"z")),
        ])
        .expect("apply");
        assert_eq!(b.len("a").expect("len"), 2, "{name}");
        assert_eq!(b.len("b").expect("len"), 1, "{name}");
    }
}

#[test]
fn records_keep_their_indexes_in_step() {
    for (name, f) in backends() {
        let s = &f.store;
        s.write(|tx| tx.put(&client(1, "1001", 1, Some("Alice"))))
            .expect("put");
        assert_eq!(
            s.client_by_number("1001").expect("q").map(|c| c.id),
            Some(1),
            "{name}"
        );
        assert_eq!(
            s.client_by_username("alice").expect("q").map(|c| c.id),
            Some(1),
            "{name}"
        );
        // Renumber and drop the username: old index entries go.
        s.write(|tx| tx.put(&client(1, "2001", 1, None)))
            .expect("put");
        assert!(s.client_by_number("1001").expect("q").is_none(), "{name}");
        assert!(
            s.client_by_username("alice").expect("q").is_none(),
            "{name}"
        );
        assert_eq!(
            s.client_by_number("2001").expect("q").map(|c| c.id),
            Some(1),
            "{name}"
        );
        // Delete removes record and index.
        assert!(
            s.write(|tx| tx.delete::<Client>(&id_key(1)))
                .expect("delete"),
            "{name}"
        );
        assert!(s.client_by_number("2001").expect("q").is_none(), "{name}");
        assert_eq!(s.count::<Client>().expect("count"), 0, "{name}");
    }
}

#[test]
fn a_transaction_sees_its_own_writes() {
    for (name, f) in backends() {
        let s = &f.store;
        s.write(|tx| {
            tx.put(&client(5, "5", 1, None))?;
            assert!(tx.get::<Client>(&id_key(5))?.is_some(), "{name}");
            tx.put(&client(5, "55", 1, None))
        })
        .expect("write");
        assert!(
            s.client_by_number("5").expect("q").is_none(),
            "{name}: index of the overwritten version removed"
        );
        assert!(s.client_by_number("55").expect("q").is_some(), "{name}");
    }
}

#[test]
fn a_failed_transaction_writes_nothing() {
    for (name, f) in backends() {
        let s = &f.store;
        let r: portico_core::Result<()> = s.write(|tx| {
            tx.put(&client(9, "9", 1, None))?;
            Err(Error::Invalid("changed my mind".into()))
        });
        assert!(r.is_err());
        assert_eq!(s.count::<Client>().expect("count"), 0, "{name}");
    }
}

#[test]
fn undecodable_values_name_tree_and_key() {
    for (name, f) in backends() {
        let s = &f.store;
        s.backend()
            .apply(&[op(Message::TREE, &id_key(3), Some(b"\x01{not json"))])
            .expect("apply");
        let e = s.get_id::<Message>(3).expect_err("corrupt");
        let text = e.to_string();
        assert!(
            text.contains("messages") && text.contains("0000000000000003"),
            "{name}: {text}"
        );
    }
}

#[test]
fn migrations_run_once_in_order() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    fn first(s: &Store) -> portico_core::Result<()> {
        assert_eq!(s.migration_level("test")?, 0);
        RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn second(s: &Store) -> portico_core::Result<()> {
        assert_eq!(s.migration_level("test")?, 1);
        RUNS.fetch_add(10, Ordering::SeqCst);
        Ok(())
    }
    for (name, f) in backends() {
        RUNS.store(0, Ordering::SeqCst);
        let ms = [
            Migration {
                owner: "test",
                number: 2,
                description: "second",
                run: MigrationFn::Core(second),
            },
            Migration {
                owner: "test",
                number: 1,
                description: "first",
                run: MigrationFn::Core(first),
            },
        ];
        assert_eq!(f.store.migrate(&ms).expect("migrate"), 2, "{name}");
        assert_eq!(f.store.migrate(&ms).expect("migrate"), 0, "{name}");
        assert_eq!(RUNS.load(Ordering::SeqCst), 11, "{name}");
        assert_eq!(f.store.migration_level("test").expect("level"), 2, "{name}");
    }
}

#[test]
fn sled_changes_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let s = Store::open(dir.path()).expect("open");
        s.write(|tx| tx.put(&client(1, "1001", 1, None)))
            .expect("put");
    }
    let s = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        s.client_by_number("1001").expect("q").map(|c| c.id),
        Some(1)
    );
}

#[test]
fn record_keys_are_stable() {
    assert_eq!(
        client(258, "x", 1, None).key(),
        vec![0, 0, 0, 0, 0, 0, 1, 2]
    );
}

#[test]
fn bulk_puts_keep_indexes_in_step_too() {
    for (name, f) in backends() {
        let s = &f.store;
        assert!(s.backend().is_empty(Client::TREE).expect("empty"), "{name}");
        s.put_many(&[client(1, "1001", 1, Some("a1")), client(2, "1002", 1, None)])
            .expect("fresh");
        assert!(
            !s.backend().is_empty(Client::TREE).expect("empty"),
            "{name}"
        );
        // Second bulk write over existing records: old index entries must go.
        s.put_many(&[client(1, "2001", 1, None)]).expect("update");
        s.flush().expect("flush");
        assert!(s.client_by_number("1001").expect("q").is_none(), "{name}");
        assert!(s.client_by_username("a1").expect("q").is_none(), "{name}");
        assert_eq!(
            s.client_by_number("2001").expect("q").map(|c| c.id),
            Some(1),
            "{name}"
        );
        assert_eq!(s.count::<Client>().expect("count"), 2, "{name}");
    }
}

fn ids(pairs: &[(Vec<u8>, Vec<u8>)], skip: usize) -> Vec<u64> {
    pairs
        .iter()
        .map(|(k, _)| u64::from_be_bytes(k[skip..].try_into().expect("8 bytes")))
        .collect()
}

#[test]
fn limited_scans_page_forwards_and_backwards_within_a_prefix() {
    for (name, f) in backends() {
        let b = f.store.backend();
        let mut ops = Vec::new();
        for owner in [b"a".as_slice(), b"ab", b"b"] {
            for i in [1u64, 2, 3, 300, 70_000] {
                let mut k = owner.to_vec();
                k.push(SEP);
                k.extend_from_slice(&id_key(i));
                ops.push(op("ix", &k, Some(b"")));
            }
        }
        // A key that is all 0xff bytes must not end a scan of the whole tree early.
        ops.push(op("ix", &[0xff, 0xff], Some(b"")));
        b.apply(&ops).expect("apply");
        let p = [b'a', SEP];
        let at = |i: u64| [&p[..], &id_key(i)].concat();
        let fwd = |after: Option<&[u8]>, limit| b.scan_prefix_limited("ix", &p, after, limit);
        let rev = |before: Option<&[u8]>, limit| b.scan_prefix_rev_limited("ix", &p, before, limit);
        assert_eq!(ids(&fwd(None, 2).expect("scan"), 2), [1, 2], "{name}");
        assert_eq!(
            ids(&fwd(Some(&at(2)), 10).expect("scan"), 2),
            [3, 300, 70_000],
            "{name}: `a` must not run into `ab`"
        );
        assert_eq!(
            ids(&rev(None, 2).expect("scan"), 2),
            [70_000, 300],
            "{name}"
        );
        assert_eq!(
            ids(&rev(Some(&at(300)), 10).expect("scan"), 2),
            [3, 2, 1],
            "{name}"
        );
        assert_eq!(ids(&rev(Some(&at(2)), 10).expect("scan"), 2), [1], "{name}");
        assert!(rev(Some(&at(1)), 10).expect("scan").is_empty(), "{name}");
        assert!(
            rev(Some(b"0"), 10).expect("scan").is_empty(),
            "{name}: before the prefix"
        );
        assert!(
            fwd(Some(b"z"), 10).expect("scan").is_empty(),
            "{name}: after the prefix"
        );
        assert!(rev(None, 0).expect("scan").is_empty(), "{name}");
        assert!(
            b.scan_prefix_rev_limited("nosuch", &[], None, 5)
                .expect("scan")
                .is_empty(),
            "{name}"
        );
        // The whole tree, both ways.
        let all = b.scan_prefix_limited("ix", &[], None, 100).expect("scan");
        assert_eq!(all.len(), 16, "{name}");
        assert_eq!(all.last().map(|(k, _)| k.clone()), Some(vec![0xff, 0xff]));
        let all_rev = b
            .scan_prefix_rev_limited("ix", &[], None, 100)
            .expect("scan");
        assert_eq!(
            all_rev.first().map(|(k, _)| k.clone()),
            Some(vec![0xff, 0xff])
        );
        assert_eq!(all_rev.len(), 16, "{name}");
        // A prefix ending in 0xff (an owner and the separator) past the tree's last key.
        let tail = b
            .scan_prefix_rev_limited("ix", &[0xff], None, 100)
            .expect("scan");
        assert_eq!(tail.len(), 1, "{name}");
    }
}

#[test]
fn newest_records_come_highest_key_first_also_through_an_index() {
    for (name, f) in backends() {
        let s = &f.store;
        s.write(|tx| {
            for i in 1..=6u64 {
                tx.put(&Message {
                    id: i,
                    client_id: Some(if i % 2 == 0 { 7 } else { 8 }),
                    invoice_group_id: None,
                    subject: format!("m{i}"),
                    body: String::new(),
                    valid_from: None,
                    valid_until: None,
                })?;
            }
            Ok(())
        })
        .expect("put");
        let got = |ms: Vec<Message>| ms.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(got(s.newest(None, 4).expect("q")), [6, 5, 4, 3], "{name}");
        assert_eq!(
            got(s.newest(Some(&id_key(3)), 4).expect("q")),
            [2, 1],
            "{name}"
        );
        let by = |before: Option<u64>, limit| {
            s.newest_by_index::<Message>(
                "clientid_messageids",
                &id_key(7),
                before.map(id_key).as_deref(),
                limit,
            )
            .expect("q")
        };
        assert_eq!(got(by(None, 2)), [6, 4], "{name}");
        assert_eq!(got(by(Some(4), 5)), [2], "{name}");
    }
}

/// A value as a newer Portico would write it: version byte 2 for a record type at version 1.
#[test]
fn a_value_written_by_a_newer_version_is_refused_naming_tree_and_key() {
    for (name, f) in backends() {
        let s = &f.store;
        let json = serde_json::to_vec(&client(4, "1004", 1, None)).expect("json");
        s.backend()
            .apply(&[op(
                Client::TREE,
                &id_key(4),
                Some(&[&[2u8][..], &json].concat()),
            )])
            .expect("apply");
        let e = s.get_id::<Client>(4).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "stored value in tree `clients` at key 0000000000000004 cannot be decoded: written by a newer version of Portico (record version 2; this one reads up to 1)",
            "{name}"
        );
        // The same bytes at the current version read fine.
        s.backend()
            .apply(&[op(
                Client::TREE,
                &id_key(4),
                Some(&[&[1u8][..], &json].concat()),
            )])
            .expect("apply");
        assert_eq!(
            s.get_id::<Client>(4).expect("read").map(|c| c.id),
            Some(4),
            "{name}"
        );
    }
}

#[test]
fn lenient_reads_skip_an_unreadable_record_and_strict_ones_fail() {
    for (name, f) in backends() {
        let s = &f.store;
        s.write(|tx| {
            tx.put(&client(1, "1001", 3, None))?;
            tx.put(&client(2, "1002", 3, None))?;
            tx.put(&client(3, "1003", 3, None))
        })
        .expect("put");
        s.backend()
            .apply(&[op(Client::TREE, &id_key(2), Some(b"\x01{broken"))])
            .expect("apply");
        let e = s.all::<Client>().expect_err("strict").to_string();
        assert!(
            e.contains("tree `clients` at key 0000000000000002"),
            "{name}: {e}"
        );
        let ids = |cs: Vec<Client>| cs.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(s.all_lenient().expect("lenient")), [1, 3], "{name}");
        let e = s
            .by_index::<Client>("invoicegroupid_clientids", &id_key(3))
            .expect_err("strict");
        assert!(e.to_string().contains("0000000000000002"), "{name}: {e}");
        assert_eq!(
            ids(s
                .by_index_lenient("invoicegroupid_clientids", &id_key(3))
                .expect("lenient")),
            [1, 3],
            "{name}"
        );
        assert_eq!(ids(s.newest(None, 10).expect("newest")), [3, 1], "{name}");
    }
}

#[test]
fn an_index_read_in_a_transaction_sees_its_pending_changes() {
    for (name, f) in backends() {
        let s = &f.store;
        s.write(|tx| tx.put(&client(1, "1001", 1, Some("alice"))))
            .expect("put");
        s.write(|tx| {
            let found = |tx: &portico_core::internal::store::WriteTx<'_>, who: &str| {
                tx.by_index_first::<Client>("username_clientid", who.as_bytes())
                    .map(|c| c.map(|c| c.id))
            };
            assert_eq!(found(tx, "alice")?, Some(1), "{name}");
            tx.put(&client(1, "1001", 1, Some("ally")))?;
            tx.put(&client(2, "1002", 1, Some("alice")))?;
            assert_eq!(found(tx, "alice")?, Some(2), "{name}");
            assert_eq!(found(tx, "ally")?, Some(1), "{name}");
            tx.delete::<Client>(&id_key(2))?;
            assert_eq!(found(tx, "alice")?, None, "{name}");
            Ok(())
        })
        .expect("write");
    }
}

#[test]
fn tree_names_and_for_each_see_every_pair_in_key_order() {
    for (name, f) in backends() {
        let b = f.store.backend();
        b.apply(&[
            op("zeta", &[2], Some(b"b")),
            op("alpha", &[9], Some(b"")),
            op("zeta", &[1], Some(b"a")),
            op("zeta", &[1, 0], Some(b"c")),
        ])
        .expect("apply");
        let names = b.tree_names().expect("names");
        assert!(
            names.contains(&"alpha".to_string()) && names.contains(&"zeta".to_string()),
            "{name}: {names:?}"
        );
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{name}: sorted");
        assert!(!names.iter().any(|n| n.starts_with("__sled")), "{name}");
        let mut seen = Vec::new();
        b.for_each("zeta", &mut |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .expect("for_each");
        assert_eq!(
            seen,
            vec![
                (vec![1], b"a".to_vec()),
                (vec![1, 0], b"c".to_vec()),
                (vec![2], b"b".to_vec())
            ],
            "{name}"
        );
        // An error from the visitor stops the walk and comes back.
        let mut calls = 0;
        let e = b
            .for_each("zeta", &mut |_, _| {
                calls += 1;
                Err(Error::Invalid("stop".into()))
            })
            .expect_err("stopped");
        assert_eq!((calls, e.to_string()), (1, "stop".to_string()), "{name}");
        // Writers wait while a snapshot is read; readers do not.
        let writer = f.store.clone();
        let (read, during, pending) = f
            .store
            .with_writes_paused(|b| {
                let pending = std::thread::spawn(move || {
                    writer.write(|tx| {
                        tx.set_raw("zeta", vec![3], Some(b"d".to_vec()));
                        Ok(())
                    })
                });
                std::thread::sleep(std::time::Duration::from_millis(150));
                Ok((b.get("zeta", &[2])?, b.get("zeta", &[3])?, pending))
            })
            .expect("paused read");
        assert_eq!(read, Some(b"b".to_vec()), "{name}");
        assert_eq!(during, None, "{name}: the write waited");
        pending.join().expect("writer").expect("write");
        assert_eq!(
            b.get("zeta", &[3]).expect("get"),
            Some(b"d".to_vec()),
            "{name}"
        );
    }
}
