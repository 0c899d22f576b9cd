#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine or a warm one:
# installs what the tests need, then formatting, lints, tests, doctests, docs, benches
# (compiled) and a short fuzz smoke of every target.
#
# Usage: scripts/test.sh            (everything)
#        FUZZ_RUNS=200000 scripts/test.sh   (a longer fuzz smoke)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
FUZZ_RUNS="${FUZZ_RUNS:-5000}"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo is required (rustup stable)"; exit 1; }
cargo --version
rustup component list --installed 2>/dev/null | grep -qE '^(rustfmt|clippy)' || rustup component add rustfmt clippy

step "SMTP test server (python3 + aiosmtpd)"
# The SMTP adapter's tests start a real aiosmtpd server on 127.0.0.1.
if ! command -v python3 >/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
fi
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m pip install --quiet aiosmtpd 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd 2>/dev/null \
    || { apt-get update -qq && apt-get install -y -qq python3-aiosmtpd >/dev/null && export PYTHON=/usr/bin/python3; }
fi
"${PYTHON:-python3}" -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'

step "PostgreSQL for the adapter tests"
# With DATABASE_URL set, the tests create their databases there. Without it, each test
# binary starts a throwaway cluster (scripts/throwaway-postgres.sh) and needs initdb.
if [ -n "${DATABASE_URL:-}" ]; then
  echo "using DATABASE_URL"
elif ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then
  echo "initdb found: tests start a throwaway cluster"
else
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

step "Chromium for the browser test"
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
/usr/bin/chromium --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test (unit, integration, property, doctests)"
cargo test --workspace --all-features

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "benches compile"
cargo bench -p resident-auth-benches --no-run --quiet

step "fuzz smoke (${FUZZ_RUNS} runs per target)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
(
  cd fuzz
  RUSTC_BOOTSTRAP=1 cargo fuzz build
  for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
    scratch=$(mktemp -d)
    # New inputs go to a scratch directory so the committed corpus stays as reviewed.
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$scratch" "corpus/$target" -- \
      -runs="$FUZZ_RUNS" -max_len=512 2>&1 | tail -n 1
    rm -rf "$scratch"
  done
)

echo
echo "all checks passed"
