#!/usr/bin/env bash
# Creates .dev.vars (the local secrets wrangler and `make dev` read) on first
# run, with a random admin password and cookie secret; values already in the environment win.
# Prints where Settee will be and how to log in.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .dev.vars ]; then
  user=${COUCHDB_USER:-admin}
  pass=${COUCHDB_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}
  umask 077
  secret=${COUCHDB_SECRET:-$(head -c 32 /dev/urandom | base64 | tr -d '/+=')}
  printf 'COUCHDB_USER=%s\nCOUCHDB_PASSWORD=%s\nCOUCHDB_SECRET=%s\n' "$user" "$pass" "$secret" > .dev.vars
  echo "Created .dev.vars with a new admin password."
fi
user=$(sed -n 's/^COUCHDB_USER=//p' .dev.vars)
pass=$(sed -n 's/^COUCHDB_PASSWORD=//p' .dev.vars)
echo "Admin: ${COUCHDB_USER:-$user} / ${COUCHDB_PASSWORD:-$pass}"
echo "URL:   http://${COUCHDB_USER:-$user}:${COUCHDB_PASSWORD:-$pass}@127.0.0.1:${PORT:-5984}/"
