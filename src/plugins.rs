//! The compiled-in feature plugins, in the order they register (and their tabs' hooks run).

use portico_core::plugin::Plugin;

pub fn compiled_in() -> Vec<Box<dyn Plugin>> {
    vec![portico_invoicing::plugin()]
}
