#!/usr/bin/env bash
# Fuzzes a running stack from openapi.json with schemathesis, for at least CASES test cases.
# Usage: tests/fuzz/run.sh CASES   (with CRM_EDGE_URL and CRM_EDGE_ADMIN_TOKEN set, as
# start_stack in scripts/lib.sh exports them; .venv from scripts/setup)
#
# It makes fixtures on the stack first (a business, its API key, accounts, connectors, a
# conversation, webhooks, a CRM link, an SSO token: tests/e2e/openapi/fixtures.mjs), so that ids
# in paths are real and the API key, admin token and SSO token authenticate. Then it runs
# schemathesis's examples, coverage (only when CASES is 2000 or more: it alone makes about 2,800
# cases), fuzzing and stateful phases with the checks in tests/fuzz/schemathesis.toml (no 5xx,
# documented statuses, content types and schemas, and the error shape of tests/fuzz/hooks.py),
# round after round with new seeds until CASES cases have run. Exits non-zero when any round
# found a failure (every round runs, so that one run shows them all).
# The report of each round (JUnit XML, and a cassette of every request) is kept in
# tests/fuzz/report/ (git-ignored); FUZZ_REPORT_DIR moves it.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"

budget="${1:-}"
[[ $budget =~ ^[0-9]+$ && $budget -gt 0 ]] || die "usage: tests/fuzz/run.sh CASES (a number of test cases)"
: "${CRM_EDGE_URL:?set CRM_EDGE_URL to the stack to fuzz}" "${CRM_EDGE_ADMIN_TOKEN:?set CRM_EDGE_ADMIN_TOKEN}"
[[ -x $FUZZ_VENV/bin/schemathesis ]] || die "schemathesis is not installed in .venv: run scripts/setup"

report_dir="${FUZZ_REPORT_DIR:-$ROOT/tests/fuzz/report}"
mkdir -p "$report_dir"
fixtures="$(node tests/e2e/openapi/fixtures.mjs)" || die "making the fuzz fixtures on $CRM_EDGE_URL failed (above)"
set -a
eval "$fixtures"
set +a
export SCHEMATHESIS_HOOKS="$ROOT/tests/fuzz/hooks.py"

operations="$(python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
print(sum(m in ("get", "put", "post", "delete", "patch", "head", "options") for p in doc["paths"].values() for m in p))' openapi.json)"
phases=examples,fuzzing,stateful
(( budget >= 2000 )) && phases=examples,coverage,fuzzing,stateful

total=0 round=0 started=$SECONDS failed=()
while (( total < budget && round < 8 )); do
  round=$((round + 1))
  # Each operation's share of what is left; operations with few distinct inputs (GET /health)
  # run out before their share, which the next round makes up.
  per_operation=$(( (budget - total + operations - 1) / operations ))
  log="$report_dir/round-$round.log"
  say "fuzz round $round: up to $per_operation cases per operation ($operations operations, phases $phases)"
  "$FUZZ_VENV/bin/schemathesis" --config-file tests/fuzz/schemathesis.toml run openapi.json \
    --url "$CRM_EDGE_URL" --phases "$phases" --max-examples "$per_operation" --no-color \
    --report junit,vcr --report-dir "$report_dir" \
    --report-junit-path "$report_dir/round-$round.xml" --report-vcr-path "$report_dir/round-$round.cassette.yaml" \
    >"$log" 2>&1 || failed+=("$log")
  cases="$(sed -nE 's/^ *([0-9]+) generated.*/\1/p' "$log" | tail -n 1)"
  [[ -n $cases ]] || { tail -n 40 "$log" >&2; die "schemathesis did not finish round $round (log: $log)"; }
  total=$((total + cases))
  sed -n '/^Failures:/,/^$/p' "$log"
  say "round $round: $cases cases ($total of $budget), $(grep -Eo '[0-9]+ found [0-9]+ unique failures?' "$log" || echo 'no failures')"
  # Coverage is the same every round; once is enough.
  phases="${phases/coverage,/}"
done
say "fuzzing: $total cases in $((SECONDS - started)) s, $round round(s); logs in ${report_dir#"$ROOT"/}"
if (( ${#failed[@]} > 0 )); then
  for log in "${failed[@]}"; do
    sed -n '/=== FAILURES ===/,/=== WARNINGS ===/p' "$log" | head -n 300 >&2
  done
  die "the fuzzer found failures (above; logs: ${failed[*]})"
fi
(( total >= budget )) || die "only $total of $budget cases ran in $round rounds"
