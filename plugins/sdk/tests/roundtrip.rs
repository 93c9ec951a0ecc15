#![allow(unsafe_code)] // plays the portal's side of the C ABI
//! Drives a plugin declared with `declare_plugin!` through its C entry point, in-process, the
//! way the portal does: vtable, `describe`, page and hook calls that reach an in-memory host
//! store, a panicking handler and unreadable input. Every buffer goes back to its owner's `free`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ffi::c_void;

use portico_plugin_sdk::abi::{ABI_VERSION, EntryFn, HostApi, PluginVtable, RawBuf, SDK_VERSION};
use portico_plugin_sdk::protocol::{Call, CallReply, HostReply, HostRequest};
use portico_plugin_sdk::{
    ClientView, Description, HookRequest, Host, Map, PageReply, PageRequest, Plugin, SettingDecl,
    SettingKind, Value, Veto, declare_plugin, flag, json,
};

// ---- the plugin under test ---------------------------------------------------------------

#[derive(Default)]
struct Counter;

impl Counter {
    fn visit(host: &Host<'_>) -> Result<(u64, usize), String> {
        let visits = host
            .get("visits", "n")?
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
            + 1;
        host.put("visits", "n", json!(visits))?;
        Ok((visits, host.scan("visits", "")?.len()))
    }
}

impl Plugin for Counter {
    fn describe(&self) -> Description {
        Description::new("counter", "Counter", "1.2.3")
            .tab("count", "counter-tab", &["counter_on"])
            .setting(SettingDecl::bool("counter_on", true, "Count visits.").per_invoice_group())
            .handles("before_login")
            .template("count.html", "<p>{{ page.visits }}</p>")
            .translations("en", "counter-tab = Count")
            .translations("cs", "counter-tab = Počet")
    }

    fn page(&self, req: &PageRequest, host: &Host<'_>) -> PageReply {
        match req.path.as_str() {
            "/" => match Counter::visit(host) {
                Ok((visits, entries)) => PageReply::Render {
                    template: "count.html".into(),
                    context: json!({ "visits": visits, "entries": entries, "who": req.client.name }),
                    tab: Some("count".into()),
                    status: None,
                },
                Err(e) => PageReply::render("count.html", json!({ "error": e })),
            },
            "/escape" => match host.get("../core", "x") {
                Ok(v) => PageReply::render("count.html", json!({ "got": v })),
                Err(e) => PageReply::render("count.html", json!({ "error": e })),
            },
            "/panic" => panic!("page handler broke at {}", req.path),
            _ => PageReply::Status { code: 404 },
        }
    }

    fn hook(&self, req: &mut HookRequest, _host: &Host<'_>) -> Result<(), Veto> {
        if flag(&req.settings, "counter_on") {
            return Err(Veto::new("Closed for maintenance.").with("cs", "Zavřeno kvůli údržbě."));
        }
        req.event["note"] = json!("seen");
        Ok(())
    }
}

declare_plugin!(Counter);

// ---- the host side -----------------------------------------------------------------------

thread_local! {
    /// Reply buffers the test host handed out and the plugin has not freed yet (the plugin calls
    /// the host on the caller's thread, and `HostApi::free` has no context pointer).
    static HOST_BUFS_LIVE: Cell<i64> = const { Cell::new(0) };
}

/// An in-memory store standing in for the portal's: `(tree, key) → value`.
#[derive(Default)]
struct Store {
    data: RefCell<BTreeMap<(String, String), Value>>,
    /// Every request as it came over the wire.
    requests: RefCell<Vec<Value>>,
}

fn tree_ok(tree: &str) -> Result<(), String> {
    let fine = (1..=64).contains(&tree.len())
        && tree
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if fine {
        Ok(())
    } else {
        Err(format!("tree name not allowed: {tree:?}"))
    }
}

impl Store {
    fn api(&self) -> HostApi {
        HostApi {
            ctx: (self as *const Store).cast(),
            call: host_call,
            free: host_free,
        }
    }

    fn answer(&self, req: HostRequest) -> Result<HostReply, String> {
        let mut data = self.data.borrow_mut();
        Ok(match req {
            // This in-memory host has no hooks to run.
            HostRequest::RunHook { .. } => return Err("no hooks here".into()),
            HostRequest::Get { tree, key } => {
                tree_ok(&tree)?;
                HostReply::Value(data.get(&(tree, key)).cloned())
            }
            HostRequest::Scan { tree, prefix } => {
                tree_ok(&tree)?;
                let entries = data
                    .iter()
                    .filter(|((t, k), _)| *t == tree && k.starts_with(&prefix));
                HostReply::Entries(entries.map(|((_, k), v)| (k.clone(), v.clone())).collect())
            }
            HostRequest::Write { changes, expect } => {
                for c in changes.iter().chain(&expect) {
                    tree_ok(&c.tree)?;
                }
                if expect
                    .iter()
                    .any(|e| data.get(&(e.tree.clone(), e.key.clone())) != e.value.as_ref())
                {
                    return Ok(HostReply::Conflict);
                }
                for c in changes {
                    match c.value {
                        Some(v) => data.insert((c.tree, c.key), v),
                        None => data.remove(&(c.tree, c.key)),
                    };
                }
                HostReply::Done
            }
        })
    }
}

unsafe extern "C" fn host_call(ctx: *const c_void, input: *const u8, len: usize) -> RawBuf {
    // SAFETY: `ctx` is the `Store` behind the `HostApi` the test passed for this very call, and
    // the SDK hands us `len` readable bytes.
    let (store, bytes) = unsafe {
        (
            &*ctx.cast::<Store>(),
            std::slice::from_raw_parts(input, len),
        )
    };
    let reply = match serde_json::from_slice::<Value>(bytes) {
        Err(e) => HostReply::Error(format!("unreadable request: {e}")),
        Ok(raw) => {
            store.requests.borrow_mut().push(raw.clone());
            match serde_json::from_value::<HostRequest>(raw) {
                Err(e) => HostReply::Error(format!("unreadable request: {e}")),
                Ok(req) => store.answer(req).unwrap_or_else(HostReply::Error),
            }
        }
    };
    HOST_BUFS_LIVE.with(|n| n.set(n.get() + 1));
    RawBuf::from_vec(serde_json::to_vec(&reply).expect("a reply encodes"))
}

unsafe extern "C" fn host_free(buf: RawBuf) {
    HOST_BUFS_LIVE.with(|n| n.set(n.get() - 1));
    // SAFETY: every buffer the plugin gives back came from `host_call`, in this binary.
    drop(unsafe { buf.into_vec() });
}

// ---- driving the plugin ------------------------------------------------------------------

fn vtable() -> &'static PluginVtable {
    // The symbol the portal looks up has exactly the type it expects.
    let entry: EntryFn = portico_plugin_entry;
    // SAFETY: the entry point returns a pointer to a `static` vtable.
    unsafe { &*entry() }
}

/// Copies a buffer the plugin returned and gives it back to the plugin's `free`.
fn take(buf: RawBuf) -> Vec<u8> {
    let vt = vtable();
    // SAFETY: `buf` is fresh from this plugin and freed exactly once, right after the copy.
    unsafe {
        let bytes = buf.as_slice().to_vec();
        (vt.free)(buf);
        bytes
    }
}

fn call_raw(host: *const HostApi, input: &[u8]) -> Value {
    // SAFETY: `host` is null or lives for the call; `input` is `input.len()` readable bytes.
    let buf = unsafe { (vtable().call)(host, input.as_ptr(), input.len()) };
    let reply = serde_json::from_slice::<Value>(&take(buf)).expect("the reply is JSON");
    // Every reply is also a well-formed `CallReply`.
    serde_json::from_value::<CallReply>(reply.clone()).expect("the reply is a CallReply");
    assert_eq!(
        HOST_BUFS_LIVE.with(Cell::get),
        0,
        "the plugin freed every host reply"
    );
    reply
}

fn call(store: &Store, call: &Call) -> Value {
    let api = store.api();
    call_raw(&api, &serde_json::to_vec(call).unwrap())
}

fn page(path: &str) -> Call {
    Call::Page(PageRequest {
        method: "GET".into(),
        path: path.into(),
        client: ClientView {
            id: 7,
            number: "1001".into(),
            name: "Jana Nováková".into(),
            ..ClientView::default()
        },
        lang: "cs".into(),
        ..PageRequest::default()
    })
}

fn settings(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

// ---- tests -------------------------------------------------------------------------------

#[test]
fn entry_point_declares_this_abi_and_sdk() {
    let vt = vtable();
    assert_eq!(vt.abi_version, ABI_VERSION);
    assert_eq!(vt.abi_version, 1);
    // SAFETY: points at the SDK's `'static` version string.
    let sdk = unsafe { vt.sdk_version.to_string_lossy() };
    assert_eq!(sdk, SDK_VERSION);
    assert_eq!(sdk, env!("CARGO_PKG_VERSION"));
}

#[test]
fn describe_returns_the_description_as_json() {
    // SAFETY: `describe` takes nothing; its buffer goes back through `take`.
    let bytes = take(unsafe { (vtable().describe)() });
    let d: Description = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (d.id.as_str(), d.name.as_str(), d.version.as_str()),
        ("counter", "Counter", "1.2.3")
    );
    assert_eq!(d.tabs.len(), 1);
    let tab = &d.tabs[0];
    assert_eq!(
        (
            tab.id.as_str(),
            tab.title_key.as_str(),
            tab.icon.as_str(),
            tab.order,
            tab.path.as_str()
        ),
        ("count", "counter-tab", "count", 500, "/")
    );
    assert_eq!(tab.visible_when, ["counter_on"]);
    assert_eq!(d.settings.len(), 1);
    let s = &d.settings[0];
    assert_eq!(
        (s.key.as_str(), s.kind, &s.default),
        ("counter_on", SettingKind::Bool, &json!(true))
    );
    assert_eq!(
        (s.description.as_str(), s.per_invoice_group),
        ("Count visits.", true)
    );
    assert_eq!((s.min, s.max, s.choices.len()), (None, None, 0));
    assert_eq!(d.hooks, ["before_login"]);
    assert!(d.menu_buttons.is_empty() && d.declares_hooks.is_empty());
    assert_eq!(
        d.templates,
        BTreeMap::from([(
            "count.html".to_string(),
            "<p>{{ page.visits }}</p>".to_string()
        )])
    );
    assert_eq!(
        d.translations,
        BTreeMap::from([
            ("cs".to_string(), "counter-tab = Počet".to_string()),
            ("en".to_string(), "counter-tab = Count".to_string()),
        ])
    );
}

#[test]
fn page_uses_the_host_store() {
    let store = Store::default();
    for visits in 1..=2 {
        assert_eq!(
            call(&store, &page("/")),
            json!({ "page": { "render": {
                "template": "count.html",
                "context": { "visits": visits, "entries": 1, "who": "Jana Nováková" },
                "tab": "count",
                "status": null,
            } } })
        );
    }
    assert_eq!(
        *store.data.borrow(),
        BTreeMap::from([(("visits".to_string(), "n".to_string()), json!(2))])
    );
    let requests = store.requests.borrow();
    assert_eq!(
        requests[..3],
        [
            json!({ "op": "get", "tree": "visits", "key": "n" }),
            json!({ "op": "write", "changes": [{ "tree": "visits", "key": "n", "value": 1 }] }),
            json!({ "op": "scan", "tree": "visits", "prefix": "" }),
        ]
    );
    assert_eq!(requests.len(), 6);
}

#[test]
fn host_errors_reach_the_plugin() {
    let store = Store::default();
    assert_eq!(
        call(&store, &page("/escape")),
        json!({ "page": { "render": {
            "template": "count.html",
            "context": { "error": "tree name not allowed: \"../core\"" },
            "tab": null,
            "status": null,
        } } })
    );
    assert_eq!(
        call(&store, &page("/nowhere")),
        json!({ "page": { "status": { "code": 404 } } })
    );
}

#[test]
fn hook_veto_carries_translations() {
    let store = Store::default();
    let hook = |on: bool| {
        Call::Hook(HookRequest {
            hook: "before_login".into(),
            event: json!({ "client": { "number": "1001" } }),
            settings: settings(json!({ "counter_on": on })),
        })
    };
    assert_eq!(
        call(&store, &hook(true)),
        json!({ "hook": { "veto": {
            "message": "Closed for maintenance.",
            "translations": { "cs": "Zavřeno kvůli údržbě." },
        } } })
    );
    assert_eq!(
        call(&store, &hook(false)),
        json!({ "hook": { "continue": { "event": { "client": { "number": "1001" }, "note": "seen" } } } })
    );
    assert!(store.requests.borrow().is_empty());
}

#[test]
fn a_panicking_handler_becomes_an_error_reply() {
    let store = Store::default();
    assert_eq!(
        call(&store, &page("/panic")),
        json!({ "error": format!("plugin panicked: page handler broke at /panic at {}:60", file!()) })
    );
    // The plugin still answers afterwards.
    assert_eq!(
        call(&store, &page("/nowhere")),
        json!({ "page": { "status": { "code": 404 } } })
    );
}

#[test]
fn unreadable_input_becomes_an_error_reply() {
    let store = Store::default();
    let api = store.api();
    for garbage in [
        &b"not json"[..],
        b"",
        b"{\"page\": 5}",
        b"{\"nap\": {}}",
        &[0xff, 0xfe, 0x00],
    ] {
        let expected = serde_json::from_slice::<Call>(garbage).unwrap_err();
        assert_eq!(
            call_raw(&api, garbage),
            json!({ "error": format!("unreadable call: {expected}") })
        );
    }
    assert_eq!(
        call_raw(std::ptr::null(), b"{}"),
        json!({ "error": "null argument" })
    );
    assert!(store.requests.borrow().is_empty());
}
