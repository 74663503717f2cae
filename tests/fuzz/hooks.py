"""Schemathesis hooks of the fuzz run (SCHEMATHESIS_HOOKS=tests/fuzz/hooks.py).

Three jobs:

- Keep every request the stack is made to send on this machine. The API stores destinations it
  later calls (a webhook endpoint's url, a CRM link's url, a channel account's api_base_url, a
  connector's base_url or Kustomer subdomain), and generated values are mostly public hosts. So
  before each call, every such field that is a string is pointed at a closed loopback port, and
  accounts and connectors get a loopback base URL when the request would leave them on the
  provider's real API. Values of the wrong type are left as generated: the API refuses them, and
  that refusal is worth fuzzing.
- Most bodies that name a Facebook page or a conversation name the fixtures', so that the
  handlers behind them are fuzzed, not only their 404.
- The `error_shape` check: every 4xx and 5xx answered as JSON carries the one error shape,
  `{"error": {"code", "message", "field"?}}`, with the code that belongs to the status; and an
  error the document says is JSON is JSON.
"""

import json
import os
import random

import schemathesis

NOWHERE = "http://127.0.0.1:9/fuzz"
# Bodies that name a page or a conversation name the fixtures' (tests/e2e/openapi/fixtures.mjs)
# this often, so that most reach the handler's work instead of its 404; the rest stay generated.
FIXTURE_SHARE = 0.7
FIXTURE_FIELDS = {"page_id": "FUZZ_PAGE_ID", "conversation_id": "FUZZ_CONVERSATION_ID"}

# The codes each status may carry (shared/domain/src/error.rs).
CODES = {
    400: {"malformed_request"},
    401: {"unauthorized"},
    403: {"forbidden"},
    404: {"not_found"},
    405: {"method_not_allowed"},
    409: {"conflict"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
    422: {"validation_failed", "batch_too_large"},
    429: {"rate_limited"},
    500: {"internal_error"},
    502: {"crm_failed"},
    503: {"service_unavailable"},
}


def _point_home(fields, name):
    if isinstance(fields.get(name), str):
        fields[name] = NOWHERE


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    path, method = case.operation.path, case.method.upper()
    for field, variable in FIXTURE_FIELDS.items():
        if field in body and os.environ.get(variable) and random.random() < FIXTURE_SHARE:
            body[field] = os.environ[variable]
    if path in ("/api-webhooks", "/api-webhooks/{webhook_id}", "/api/dashboard/crm-links"):
        _point_home(body, "url")
    elif path in ("/admin/businesses/{business_id}/channel-accounts", "/admin/channel-accounts/{account_id}"):
        # Without api_base_url an account sends through the provider's real API.
        if "settings" not in body and method == "POST":
            body["settings"] = {}
        if isinstance(body.get("settings"), dict):
            body["settings"]["api_base_url"] = NOWHERE
    elif path in ("/admin/businesses/{business_id}/connectors", "/admin/connectors/{connector_id}"):
        if "settings" not in body and method == "POST":
            body["settings"] = {}
        settings = body.get("settings")
        if isinstance(settings, dict):
            # A Kustomer subdomain names a host of Kustomer's; base_url replaces it.
            settings.pop("subdomain", None)
            settings["base_url"] = NOWHERE


def _text(response):
    return response.content[:300].decode("utf-8", errors="replace")


def _documented_media(case, status):
    responses = case.operation.definition.raw.get("responses", {})
    response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default") or {}
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = case.operation.schema.raw_schema["components"]["responses"].get(name, {})
    return set(response.get("content", {}))


@schemathesis.check
def error_shape(ctx, response, case):
    """Every JSON error answer is {"error": {"code", "message", "field"?}} with its status's code."""
    status = response.status_code
    if status < 400 or case.method.upper() == "HEAD":
        return None
    content_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    documented = _documented_media(case, status)
    if content_type != "application/json":
        if documented and "application/json" not in documented:
            return None  # an HTML error page the document describes (the embedded inbox)
        raise AssertionError(f"a {status} answered as {content_type or 'no content type'}, not the JSON error shape")
    try:
        body = json.loads(response.content)
    except ValueError as error:
        raise AssertionError(f"a {status} whose body is not JSON: {error}") from None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(error, dict):
        raise AssertionError(f"a {status} whose body is not {{\"error\": {{...}}}}: {_text(response)}")
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str) or not error["message"]:
        raise AssertionError(f"a {status} error without a code and a message: {_text(response)}")
    extra = set(error) - {"code", "message", "field"}
    if extra or ("field" in error and not isinstance(error["field"], str)):
        raise AssertionError(f"a {status} error with fields beyond code, message and field: {_text(response)}")
    if error["code"] not in CODES.get(status, {error["code"]}):
        raise AssertionError(f"a {status} carrying the code {error['code']!r} (expected {sorted(CODES[status])})")
    return None
