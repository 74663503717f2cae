# Shared by the scripts: paths, messages, and the environment of a wasm build.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false

# Every function, in the order wrangler dev takes their configs (the gateway first: it is served).
FUNCTIONS=(gateway admin customers customers-sync customers-bulk-create customers-batch-lookup
  messages-since conversations-by-customer receiver-meta receiver-twilio receiver-email
  upload-attachment download-media send-message message-dispatcher
  webhooks webhook-dispatcher conversations sso-token embed-inbox)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# The wasm-bindgen version that Cargo.lock pins; the CLI must match it exactly.
locked_wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

# True when rustup's own wasm32 target is installed (the normal path).
# CRM_EDGE_WASM_TOOLCHAIN=debian forces the fallback path, to check it on a machine that has both.
has_rustup_wasm_target() {
  [[ ${CRM_EDGE_WASM_TOOLCHAIN:-} != debian ]] &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}

# Exports what a wasm build needs: rustup's target where installed, otherwise Debian's rustc-web
# with std built from source (see TOOLCHAIN notes in the README).
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

# The wrangler config of a function: the gateway's is the top-level one.
config_of() {
  if [[ $1 == gateway ]]; then echo "$ROOT/wrangler.toml"; else echo "$ROOT/functions/$1/wrangler.toml"; fi
}

# Starts the local stack on a free port with fresh state, waits until it answers, and exports
# CRM_EDGE_URL and CRM_EDGE_ADMIN_TOKEN. The stack and its state go away when the caller exits.
start_stack() {
  local port state
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  state="$(mktemp -d)"
  STACK_LOG="$state/wrangler.log"
  say "starting the local stack on port $port"
  set -m
  CRM_EDGE_STATE="$state" PORT="$port" CRM_EDGE_SKIP_BUILD=1 "$ROOT/scripts/dev" >"$STACK_LOG" 2>&1 &
  STACK_PID=$!
  set +m
  # shellcheck disable=SC2064
  trap "kill -- -$STACK_PID 2>/dev/null || true; rm -rf '$state'" EXIT
  export CRM_EDGE_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 120); do
    curl -sf "$CRM_EDGE_URL/health" >/dev/null 2>&1 && break
    kill -0 "$STACK_PID" 2>/dev/null || { cat "$STACK_LOG" >&2; die "the local stack exited before it was ready"; }
    sleep 1
  done
  curl -sf "$CRM_EDGE_URL/health" >/dev/null || { cat "$STACK_LOG" >&2; die "the local stack did not become ready"; }
  CRM_EDGE_ADMIN_TOKEN="$(sed -n 's/^ADMIN_TOKEN=//p' "$ROOT/.dev.vars" | head -n 1)"
  export CRM_EDGE_ADMIN_TOKEN
}
