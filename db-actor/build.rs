//! Finds the CoffeeScript compiler that `js.rs` embeds for design documents
//! with `"language": "coffeescript"`. It is the npm package `coffeescript`
//! (a pinned dev dependency in package.json), so `make setup` provides it.

use std::path::PathBuf;

const COMPILER: &str =
    "node_modules/coffeescript/lib/coffeescript-browser-compiler-legacy/coffeescript.js";

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("..");
    let path = root.join(COMPILER);
    println!("cargo:rerun-if-changed={}", path.display());
    if !path.is_file() {
        panic!(
            "{} is missing: run `make setup` (or `npm ci`) first; it installs the \
             CoffeeScript compiler Settee embeds for coffeescript design documents",
            path.display()
        );
    }
    println!(
        "cargo:rustc-env=SETTEE_COFFEESCRIPT={}",
        path.canonicalize().expect("exists").display()
    );
}
