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

# A fresh run's build outputs are the bulk of its disk use: no incremental caches (they
# pay off only for edits between builds), and each step says how much room is left.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step() { printf '\n==> %s  [disk free: %s]\n' "$*" "$(df -h --output=avail . 2>/dev/null | tail -n 1 | tr -d ' ')"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo is required (rustup stable)"; exit 1; }
cargo --version
rustup component list --installed 2>/dev/null | grep -qE '^(rustfmt|clippy)' || rustup component add rustfmt clippy

step "Python test tools: aiosmtpd (SMTP server), schemathesis (API fuzzer)"
# The SMTP adapter's tests start a real aiosmtpd server on 127.0.0.1; the API suite runs
# schemathesis against each example's served OpenAPI document.
if ! command -v python3 >/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
fi
pip_install() {
  python3 -m pip install --quiet "$@" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "$@"
}
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  pip_install aiosmtpd 2>/dev/null \
    || { apt-get update -qq && apt-get install -y -qq python3-aiosmtpd >/dev/null && export PYTHON=/usr/bin/python3; }
fi
"${PYTHON:-python3}" -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'
SCHEMATHESIS_VERSION=4.32.5
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if ! "$scripts_dir/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  pip_install "schemathesis==$SCHEMATHESIS_VERSION"
fi
# pip may put the script outside PATH (e.g. a user or system install): name it exactly.
export SCHEMATHESIS="$scripts_dir/st"
[ -x "$SCHEMATHESIS" ] || SCHEMATHESIS=$(command -v st)
"$SCHEMATHESIS" --version

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

step "Redis for the sessions adapter and the API suite"
# With REDIS_URL set, the tests use it (each under a key prefix of its own). Without it,
# each test binary starts a throwaway redis-server (scripts/throwaway-redis.sh).
if [ -n "${REDIS_URL:-}" ]; then
  echo "using REDIS_URL"
elif command -v redis-server >/dev/null; then
  echo "redis-server found: tests start a throwaway server"
else
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

step "Chromium and axe-core for the browser walk"
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
/usr/bin/chromium --version
# axe-core, the accessibility rules the browser walk runs on every screen (from npm).
AXE_VERSION=4.14.1
axe_dir=target/tools/axe
if ! grep -qs "\"version\": \"$AXE_VERSION\"" "$axe_dir/node_modules/axe-core/package.json"; then
  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
  npm install --silent --no-audit --no-fund --prefix "$axe_dir" "axe-core@$AXE_VERSION"
fi
export AXE_CORE_JS="$PWD/$axe_dir/node_modules/axe-core/axe.min.js"
echo "axe-core $AXE_VERSION"

step "cargo fmt --check"
cargo fmt --all -- --check

step "dependency hygiene: cargo deny (licences, bans, duplicate versions, sources; offline)"
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --version 0.20.2
cargo deny --log-level error check --hide-inclusion-graph bans licenses sources

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test (unit, integration, property, doctests)"
cargo test --workspace --all-features

step "the integrations alone, without their pages feature (every other run has it on)"
# The workspace run unifies features, and the examples turn `pages` on: the warning that
# letters link to pages nobody serves is compiled only without it.
cargo test --quiet -p resident-auth-axum --test unserved_pages
cargo test --quiet -p resident-auth-actix --test unserved_pages

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "public API: every library crate's items and signatures equal its reviewed snapshot (public-api/)"
# rustdoc's JSON output (unstable on stable Rust, hence RUSTC_BOOTSTRAP) rendered by
# cargo-public-api's library (tools/public-api); a change to any public item or signature
# fails here until its snapshot is updated (`UPDATE_PUBLIC_API=1 scripts/test.sh` rewrites
# them; review the diff). A rustdoc JSON format the check cannot read fails too.
cargo build --quiet -p public-api-check
api_status=0
for crate in resident-auth resident-auth-http resident-auth-axum \
  resident-auth-actix resident-auth-postgres resident-auth-sqlite resident-auth-redis resident-auth-smtp; do
  RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-Z unstable-options --output-format json" \
    cargo doc --quiet -p "$crate" --all-features --no-deps --target-dir target/api-json
  target/debug/public-api-check "target/api-json/doc/${crate//-/_}.json" "public-api/$crate.txt" || api_status=1
done
[ "$api_status" = 0 ] || exit 1

step "publishable: cargo package (verified) of every library crate; the HTTP crate framework-free"
# Verification builds each packaged crate alone, its workspace dependencies from a local
# registry of the packages just made: what crates.io would receive.
# Cargo unpacks those packages into its registry cache under name and version, and takes
# registry crates for immutable: an unpacked copy, or a build, left by an earlier run of the
# same version would be verified instead of this tree. So verification builds in a target
# directory of its own, from which our crates' artifacts (never their dependencies') are
# removed first, as are our unpacked copies (only in local, path-named `-…` registries).
verify_dir=target/package-verify
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rm -rf "$cargo_home"/registry/src/-*/resident-auth*-[0-9]* "$cargo_home"/registry/cache/-*/resident-auth*-[0-9]* \
  "$verify_dir"/package "$verify_dir"/debug/.fingerprint/resident-auth* "$verify_dir"/debug/deps/*resident_auth*
# Packaged crates are built as workspaces of their own, outside our [profile.dev]: no debug
# info there either.
CARGO_PROFILE_DEV_DEBUG=false cargo package --quiet --allow-dirty --target-dir "$verify_dir" -p resident-auth -p resident-auth-http \
  -p resident-auth-axum -p resident-auth-actix -p resident-auth-postgres -p resident-auth-sqlite -p resident-auth-redis -p resident-auth-smtp
if cargo tree -p resident-auth-http -e normal --prefix none | grep -E '^(sqlx|lettre|axum|actix)'; then
  echo "resident-auth-http must not depend on a database, mail or web framework crate"; exit 1
fi

step "benches and drivers compile (dev profile: the measurements run in release by hand)"
# The bench profile would rebuild every dependency optimised (minutes); the dev profile
# reuses the test step's artifacts and proves the same code compiles and links.
cargo build -p resident-auth-benches -p argon2-h -p api-suite --benches --bins --quiet

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
du -sh target fuzz/target 2>/dev/null || true
echo "all checks passed"
