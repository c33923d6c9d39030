#!/usr/bin/env bash
# A session with the REST gateway, as in the README ("REST gateway"). Run it against a gateway
# serving the demo with examples/gateway_consumers.yaml added:
#
#   PATCHBAY_URL=http://127.0.0.1:8000 PATCHBAY_KEY=pb_... bash examples/gateway_session.sh
#
# PATCHBAY_KEY is a key of the support_bot consumer (patchbay keys create support_bot).
set -euo pipefail
URL="${PATCHBAY_URL:-http://127.0.0.1:8000}"
AUTH="Authorization: Bearer ${PATCHBAY_KEY:?set PATCHBAY_KEY to a key from patchbay keys create}"

echo "## open, no data"
curl -sS "$URL/healthz"; echo

echo "## the entities this key may read (fields, masks, JSON Schemas)"
curl -sS -H "$AUTH" "$URL/v1/entities"; echo

echo "## German contacts, two fields, two per page"
curl -sS -H "$AUTH" "$URL/v1/entities/contact/records?address__country=DE&fields=full_name,email&limit=2"; echo

echo "## one contact by its canonical id"
curl -sS -H "$AUTH" "$URL/v1/entities/contact/records/erp:10001"; echo

echo "## the JSON filter form"
curl -sS -H "$AUTH" -H "Content-Type: application/json" \
  -d '{"where": {"and": [{"field": "source", "op": "eq", "value": "crm"},
                         {"field": "address.country", "op": "in", "value": ["US", "GB"]}]},
       "fields": ["full_name", "company_name"], "limit": 3}' \
  "$URL/v1/entities/contact/query"; echo

echo "## sources, with who owns them, and one source's health"
curl -sS -H "$AUTH" "$URL/v1/sources"; echo
curl -sS -H "$AUTH" "$URL/v1/sources/erp/health"; echo

echo "## refused: e-mail is masked for this consumer, so it cannot be filtered by its clear value"
curl -sS -H "$AUTH" -H "X-Request-ID: readme-1" \
  "$URL/v1/entities/contact/records?email=someone@example.com"; echo

echo "## refused: no key"
curl -sS -i "$URL/v1/entities/contact/records" | sed -n '1p;/^content-type/Ip'
