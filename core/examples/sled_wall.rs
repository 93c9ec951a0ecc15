//! How fast sled itself takes an import's writes, without Portico around it: the standalone
//! comparison for the import figure of `bench/run.sh` (bench/README.md, "Where the import's
//! time goes").
//!
//! It writes `--records` records of `--value-bytes` bytes each under 8-byte big-endian ids, plus
//! one index entry per record (`owner id ++ 0x00 ++ record id`, empty value, 10 records per
//! owner), in chunks of `--chunk` records, three ways, each into a fresh store with Portico's
//! page cache (48 MiB) and one flush at the end:
//!
//! - `transaction`: each chunk is one sled transaction over both trees applying one batch per
//!   tree — what `portico import` does (`SledBackend::apply`);
//! - `batches`: each chunk is one `apply_batch` per tree, without a transaction (no atomicity
//!   across the two trees);
//! - `inserts`: one `insert` per key;
//! - `no index`: like `transaction` but without the index entries, as with records keyed
//!   `owner id ++ record id` (the index would then be the key itself).
//!
//! ```sh
//! cargo run --release -p portico-core --example sled_wall -- --records 290000 --value-bytes 260
//! ```
//!
//! With `--open DATA_DIR` it only opens an existing data folder's store with sled alone and
//! prints the memory that takes: the standalone comparison for the server's resident memory.

use std::time::Instant;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, not {v:?}"))
        })
        .unwrap_or(default)
}

fn open(dir: &std::path::Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .cache_capacity(48 * 1024 * 1024)
        .open()
        .expect("open a sled store")
}

fn index_key(owner: u64, id: u64) -> Vec<u8> {
    let mut k = owner.to_be_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Writes every record with `write_chunk`, flushes, and returns records per second.
fn run(
    records: usize,
    value: &[u8],
    chunk: usize,
    write_chunk: impl Fn(&sled::Tree, &sled::Tree, std::ops::Range<u64>, &[u8]),
) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(dir.path());
    let (records_tree, index_tree) = (
        db.open_tree("records").expect("tree"),
        db.open_tree("index").expect("tree"),
    );
    let started = Instant::now();
    let mut first = 1u64;
    let end = records as u64 + 1;
    while first < end {
        let last = (first + chunk as u64).min(end);
        write_chunk(&records_tree, &index_tree, first..last, value);
        first = last;
    }
    db.flush().expect("flush");
    records as f64 / started.elapsed().as_secs_f64()
}

/// Resident memory of this process, MiB (Linux).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `--open DIR`: the memory sled alone takes for an existing Portico data folder (its store
/// must not be in use): after opening it, and after reading every tree once.
fn memory_of(dir: &std::path::Path) {
    let started = Instant::now();
    let db = open(&dir.join("store"));
    println!(
        "opened in {:.0} ms: resident {:.1} MiB",
        started.elapsed().as_secs_f64() * 1000.0,
        rss_mib()
    );
    let mut records = 0usize;
    for name in db.tree_names() {
        let tree = db.open_tree(name).expect("tree");
        records += tree.iter().count();
    }
    println!("read {records} records: resident {:.1} MiB", rss_mib());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--open")
        .and_then(|i| args.get(i + 1))
    {
        memory_of(std::path::Path::new(dir));
        return;
    }
    let records = arg(&args, "--records", 290_000);
    let value = vec![b'x'; arg(&args, "--value-bytes", 260)];
    let chunk = arg(&args, "--chunk", 4096);

    let transaction = run(records, &value, chunk, |r, i, ids, v| {
        let (mut rb, mut ib) = (sled::Batch::default(), sled::Batch::default());
        for id in ids {
            rb.insert(&id.to_be_bytes(), v);
            ib.insert(index_key(id / 10, id), &[]);
        }
        use sled::Transactional;
        (r, i)
            .transaction(|(r, i)| {
                r.apply_batch(&rb)?;
                i.apply_batch(&ib)?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .expect("transaction");
    });
    let batches = run(records, &value, chunk, |r, i, ids, v| {
        let (mut rb, mut ib) = (sled::Batch::default(), sled::Batch::default());
        for id in ids {
            rb.insert(&id.to_be_bytes(), v);
            ib.insert(index_key(id / 10, id), &[]);
        }
        r.apply_batch(rb).expect("batch");
        i.apply_batch(ib).expect("batch");
    });
    let inserts = run(records, &value, chunk, |r, i, ids, v| {
        for id in ids {
            r.insert(id.to_be_bytes(), v).expect("insert");
            i.insert(index_key(id / 10, id), &[]).expect("insert");
        }
    });
    let no_index = run(records, &value, chunk, |r, _, ids, v| {
        let mut rb = sled::Batch::default();
        for id in ids {
            rb.insert(index_key(id / 10, id), v);
        }
        use sled::Transactional;
        std::slice::from_ref(r)
            .transaction(|views| {
                views[0].apply_batch(&rb)?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .expect("transaction");
    });
    println!(
        "sled alone, {records} records of {} bytes + one index entry each, chunks of {chunk}:",
        value.len()
    );
    println!("| way | records/s |");
    println!("|---|---|");
    println!("| one transaction per chunk (as portico import) | {transaction:.0} |");
    println!("| one batch per tree per chunk, no transaction | {batches:.0} |");
    println!("| one insert per key | {inserts:.0} |");
    println!("| one transaction per chunk, records keyed by owner, no index | {no_index:.0} |");
    println!("result sled_transaction_rps={transaction:.0}");
    println!("result sled_batches_rps={batches:.0}");
    println!("result sled_inserts_rps={inserts:.0}");
    println!("result sled_no_index_rps={no_index:.0}");
}
