#!/usr/bin/env bash
# Prints the Worker bundle's size, raw and gzipped (Cloudflare's limit is
# on the compressed size: 3 MB free, 10 MB paid).
set -euo pipefail
cd "$(dirname "$0")/../router/build"
raw=$(cat index.js index_bg.wasm | wc -c)
gz=$(cat index.js index_bg.wasm | gzip -9 | wc -c)
printf 'Bundle: %d KiB raw, %d KiB gzip (index.js + index_bg.wasm)\n' $((raw / 1024)) $((gz / 1024))
