//! The C ABI between the portal and a dynamic plugin. Everything that crosses it is a byte
//! buffer of JSON (see [`crate::protocol`]); a buffer is freed by the side that allocated it,
//! through that side's `free` function.
//!
//! Layout rule kept across ABI versions: the entry symbol [`ENTRY_SYMBOL`] is an
//! `extern "C" fn() -> *const PluginVtable` and the vtable's first field is the ABI version, so
//! a host can read the version of any library and refuse it before calling anything else.

use std::ffi::c_void;

/// Bumped whenever the vtable layout or the meaning of a protocol message changes
/// incompatibly. A host loads only libraries that declare the version it was built with.
pub const ABI_VERSION: u32 = 1;

/// The version of this SDK crate, recorded in every plugin built with it.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Name of the one symbol a plugin library exports (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"portico_plugin_entry\0";

/// The entry function's type.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginVtable;

/// Bytes owned by one side of the boundary. Built from a `Vec<u8>` and turned back into one
/// only by the side that built it (through its `free`).
#[repr(C)]
pub struct RawBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl RawBuf {
    /// Hands a vector over the boundary; the receiver must give it back to this side's `free`.
    pub fn from_vec(v: Vec<u8>) -> RawBuf {
        let mut v = std::mem::ManuallyDrop::new(v);
        RawBuf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// The bytes, borrowed.
    ///
    /// # Safety
    /// `self` must come from [`RawBuf::from_vec`] (on either side) and not be freed yet.
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: ptr/len describe a live allocation of `len` initialised bytes (caller's
        // contract).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Takes the vector back.
    ///
    /// # Safety
    /// `self` must come from [`RawBuf::from_vec`] in this same library (same allocator).
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: ptr/len/cap are exactly what `from_vec` took apart in this library.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }
}

/// A `'static` string of the library (its SDK version).
#[repr(C)]
pub struct RawStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl RawStr {
    pub const fn new(s: &'static str) -> RawStr {
        RawStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// # Safety
    /// `self` must point at `len` bytes that live as long as the library stays loaded.
    pub unsafe fn to_string_lossy(&self) -> String {
        if self.ptr.is_null() {
            return String::new();
        }
        // SAFETY: caller's contract.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// What the host lends a plugin for the length of one call: a way to ask for its store.
/// Requests and replies are JSON ([`crate::protocol::HostRequest`] /
/// [`crate::protocol::HostReply`]); replies are freed with `free`.
#[repr(C)]
pub struct HostApi {
    pub ctx: *const c_void,
    pub call: unsafe extern "C" fn(ctx: *const c_void, input: *const u8, len: usize) -> RawBuf,
    pub free: unsafe extern "C" fn(buf: RawBuf),
}

/// The table a plugin library hands the host. `abi_version` must stay the first field.
#[repr(C)]
pub struct PluginVtable {
    pub abi_version: u32,
    pub sdk_version: RawStr,
    /// JSON [`crate::protocol::Description`]: who the plugin is and what it registers.
    pub describe: unsafe extern "C" fn() -> RawBuf,
    /// One JSON [`crate::protocol::Call`] in, one JSON [`crate::protocol::CallReply`] out.
    pub call: unsafe extern "C" fn(host: *const HostApi, input: *const u8, len: usize) -> RawBuf,
    /// Frees a buffer this library returned.
    pub free: unsafe extern "C" fn(buf: RawBuf),
}

// SAFETY: the vtable holds function pointers and a pointer to a 'static string; nothing in it
// is mutated after construction.
unsafe impl Sync for PluginVtable {}
unsafe impl Send for PluginVtable {}
