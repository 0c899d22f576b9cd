#!/usr/bin/env bash
# The whole side-by-side of the README's "Side by side with django-allauth", in one run:
# builds our release binaries (the default build, and `-C target-cpu=native` for H only),
# installs the peer (Django, django-allauth, argon2-cffi, gunicorn, psycopg from PyPI) into
# target/peer-venv, then runs the driver, which starts every server on 127.0.0.1.
#
# Usage: benches/peer/compare.sh [--seconds 8] [--clients 32] [--no-postgres]
# PostgreSQL: DATABASE_URL's server when set, else a throwaway cluster (needs initdb).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release --quiet -p portal-axum
cargo build --release --quiet -p resident-auth-benches --bin http-compare -p argon2-h
# The native build goes to its own target directory, so the default build stays portable.
RUSTFLAGS="-C target-cpu=native" cargo build --release --quiet \
  --target-dir target/native -p argon2-h

venv=target/peer-venv
if [ ! -x "$venv/bin/gunicorn" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r benches/peer/requirements.txt
fi

exec target/release/http-compare --ours target/release/portal-axum --peer benches/peer \
  --venv "$venv" --h-native target/native/release/argon2-h "$@"
