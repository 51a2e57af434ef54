#!/usr/bin/env bash
# Installs what building, serving and testing Settee needs. Each tool is
# installed once into a cache directory and skipped when present, so only
# the first run on a machine is slow (the two cargo installs take 10-20 min
# on 2 cores). Writes .settee/tools.env for the Makefile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=${SETTEE_TOOLS:-$HOME/.cache/settee-tools}
mkdir -p "$tools" .settee

say() { printf '==> %s\n' "$*" >&2; }

# The version of a crate as Cargo.lock pins it.
locked() {
  awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# QuickJS (the JavaScript engine for design documents) is C: building it
# for wasm32 needs clang and llvm-ar; Debian's gcc cannot target wasm.
if ! command -v clang-19 >/dev/null || ! command -v llvm-ar-19 >/dev/null; then
  say "installing clang-19 and llvm-19 (for QuickJS on wasm32)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q clang-19 llvm-19 lld-19 >/dev/null
fi

# The Fauxton browser test drives Debian's Chromium through playwright-core
# (which never downloads a browser of its own).
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (for the Fauxton browser test)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null
fi

[ -f Cargo.lock ] || cargo generate-lockfile
wbg=$(locked wasm-bindgen)
wb=$(locked worker)
# worker-build downloads wasm-bindgen from GitHub, which is unreachable
# here: build the CLI at exactly the library's version instead.
if [ ! -x "$tools/wasm-bindgen-$wbg/bin/wasm-bindgen" ]; then
  say "installing wasm-bindgen-cli $wbg (once)"
  cargo install wasm-bindgen-cli --version "=$wbg" --root "$tools/wasm-bindgen-$wbg"
fi
if [ ! -x "$tools/worker-build-$wb/bin/worker-build" ]; then
  say "installing worker-build $wb (once)"
  cargo install worker-build --version "=$wb" --root "$tools/worker-build-$wb"
fi

# npm packages: wrangler (and its workerd), binaryen's wasm-opt (Debian's
# is too old), esbuild, and the JavaScript clients the tests drive.
stamp=node_modules/.settee-installed
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  say "installing npm packages"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
  touch "$stamp"
fi

# Fauxton, the admin UI served at /_utils: only the npm package's built
# release (its package.json lists its whole build toolchain as runtime
# dependencies), from the registry's tarball checked against the integrity
# the registry publishes. Kept out of the repository, in .settee/fauxton.
fauxton_version=1.2.6
fauxton_integrity=sha512-5ZwPKqstwmQclSHifWBmbyzlBOLoBB3gssGaiEFLPcIzHO0Zxz+uPr/D/Fs6DGH7Hfohw7s6zqcjwU9CRcshfw==
if [ "$(cat .settee/fauxton.version 2>/dev/null)" != "$fauxton_version" ]; then
  say "fetching fauxton $fauxton_version (the /_utils admin UI)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "fauxton@$fauxton_version" >/dev/null)
  node -e '
    const [file, want] = process.argv.slice(1);
    const got = "sha512-" + require("crypto").createHash("sha512")
      .update(require("fs").readFileSync(file)).digest("base64");
    if (got !== want) { console.error("fauxton: integrity " + got + ", expected " + want); process.exit(1); }
  ' "$tmp/fauxton-$fauxton_version.tgz" "$fauxton_integrity"
  tar xzf "$tmp/fauxton-$fauxton_version.tgz" -C "$tmp" package/dist/release
  rm -rf .settee/fauxton
  mv "$tmp/package/dist/release" .settee/fauxton
  rm -rf "$tmp"
  echo "$fauxton_version" > .settee/fauxton.version
fi

# The Python clients the e2e suite drives: requests and couchdb-python.
if ! python3 -c 'import requests, couchdb' 2>/dev/null; then
  say "installing python requests and CouchDB (couchdb-python)"
  python3 -m pip install --quiet requests CouchDB==1.2
fi

cat > .settee/tools.env <<ENV
export WASM_BINDGEN_BIN=$tools/wasm-bindgen-$wbg/bin/wasm-bindgen
export WASM_OPT_BIN=$root/node_modules/.bin/wasm-opt
export ESBUILD_BIN=$root/node_modules/.bin/esbuild
export WORKER_BUILD=$tools/worker-build-$wb/bin/worker-build
export WORKERD_BIN=$root/node_modules/@cloudflare/workerd-linux-64/bin/workerd
export CC_wasm32_unknown_unknown=clang-19
export AR_wasm32_unknown_unknown=llvm-ar-19
ENV
say "tools ready"
