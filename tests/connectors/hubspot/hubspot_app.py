"""A handler app that answers like HubSpot's CRM API, as documented, for the connector tests.

* ``GET /crm/v3/objects/{object}``: ``limit`` (at most 100), ``after``, ``properties``; records
  in id order; ``paging.next`` has ``after`` and a ``link`` (pointing at ``link_origin``, another
  server, so a test can show the connector never follows it).
* ``GET /crm/v3/objects/{object}/{id}``: 404 with HubSpot's error body when unknown.
* ``POST /crm/v3/objects/{object}/search``: ``filterGroups`` evaluated for the operators the
  connector may emit (any other operator is a 400, so a test fails if it emits one), one sort,
  ``limit`` up to 200, and the result window: paging at or past ``window`` is a 400, as HubSpot
  answers past 10,000. Ties in the sort property come in no particular (but fixed) order.
  String ``EQ`` ignores case; ``IN`` compares lower-cased stored values, as documented.
* ``POST /crm/v4/associations/{from}/{to}/batch/read``: 207 with errors for ids without any.
* ``GET /crm/v3/properties/{object}``; ``POST /oauth/v1/token`` (refresh-token grant).
* Every ``throttle_every``-th request is a 429 with ``Retry-After: 0`` and the
  ``X-HubSpot-RateLimit-*`` headers, when set.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

Obj = dict[str, Any]

DATETIME_PROPS = {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate",
                  "closed_date"}
NUMBER_PROPS = {"hs_object_id", "amount", "price"}
OPERATORS = {"EQ", "IN", "GT", "GTE", "LT", "LTE", "HAS_PROPERTY"}


def ms(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def error(status: int, message: str, category: str = "VALIDATION_ERROR",
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message, "correlationId": "c0ffee",
                         "category": category}, status_code=status, headers=headers)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    return int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])


class HubSpotApp:
    def __init__(self, objects: dict[str, list[Obj]],
                 associations: dict[tuple[str, str], dict[str, list[tuple[str, bool]]]],
                 *, tokens: set[str]) -> None:
        self.objects = objects
        self.associations = associations
        self.tokens = tokens  # bearer tokens accepted
        self.refresh_tokens = {"hubspot-refresh-1"}
        self.oauth_uses: dict[str, int] = {}  # access token -> requests made with it
        self.oauth_lifetime = 3
        self.window = 10_000
        self.throttle_every: int | None = None
        self.throttled = 0
        self.throttled_paths: list[str] = []
        self.count = 0
        self.link_origin = "http://127.0.0.1:1"
        self.seen: list[tuple[str, str, Any]] = []  # (method, path, query or body)
        self._matched: dict[str, list[Obj]] = {}

    def reset(self) -> None:
        self.window, self.throttle_every, self.throttled = 10_000, None, 0
        self.throttled_paths.clear()
        self.seen.clear()

    def searches(self) -> list[Obj]:
        return [body for method, path, body in self.seen
                if method == "POST" and path.endswith("/search")]

    # --- shaping objects as HubSpot returns them ------------------------------------------------

    @staticmethod
    def modified(name: str) -> str:
        return "lastmodifieddate" if name == "contacts" else "hs_lastmodifieddate"

    def shaped(self, name: str, obj: Obj, wanted: list[str]) -> Obj:
        defaults = ["hs_object_id", "createdate", self.modified(name)]
        props = obj["properties"]
        chosen = {p: props[p] for p in [*defaults, *wanted] if p in props}
        return {"id": obj["id"], "properties": chosen, "createdAt": obj["createdAt"],
                "updatedAt": obj["updatedAt"], "archived": False}

    # --- search semantics ------------------------------------------------------------------------

    def matches(self, obj: Obj, flt: Obj) -> bool:
        name, op = flt["propertyName"], flt["operator"]
        value = obj["properties"].get(name)
        if op == "HAS_PROPERTY":
            return value not in (None, "")
        if value in (None, ""):
            return False
        if op == "IN":
            return str(value).lower() in flt["values"]
        target = flt["value"]
        if name in DATETIME_PROPS:
            left: Any = ms(value)
            right: Any = int(target)
        elif name in NUMBER_PROPS:
            left, right = float(value), float(target)
        else:
            left, right = str(value).lower(), str(target).lower()
        tests: dict[str, Callable[[Any, Any], bool]] = {
            "EQ": lambda a, b: a == b, "GT": lambda a, b: a > b, "GTE": lambda a, b: a >= b,
            "LT": lambda a, b: a < b, "LTE": lambda a, b: a <= b,
        }
        return tests[op](left, right)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            self.count += 1
            if request.url.path == "/oauth/v1/token":
                response: Response = await call_next(request)
                return response
            limits = {"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "0",
                      "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                      "X-HubSpot-RateLimit-Daily": "625000",
                      "X-HubSpot-RateLimit-Daily-Remaining": "624000"}
            if self.throttle_every and self.count % self.throttle_every == 0:
                self.throttled += 1
                self.throttled_paths.append(f"{request.method} {request.url.path}")
                return error(429, "You have reached your ten_secondly_rolling limit.",
                             "RATE_LIMITS", headers={**limits, "Retry-After": "0"})
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if bearer in self.oauth_uses:  # OAuth access tokens expire after a few requests
                self.oauth_uses[bearer] += 1
                if self.oauth_uses[bearer] > self.oauth_lifetime:
                    self.tokens.discard(bearer)
            if bearer not in self.tokens:
                return error(401, "Authentication credentials not found.",
                             "INVALID_AUTHENTICATION")
            response = await call_next(request)
            response.headers.update({**limits, "X-HubSpot-RateLimit-Remaining": "150"})
            return response

        @app.post("/oauth/v1/token")
        async def token(request: Request) -> Response:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if (form.get("grant_type") != "refresh_token"
                    or form.get("refresh_token") not in self.refresh_tokens
                    or form.get("client_secret") != "hubspot-client-secret"):
                return JSONResponse({"status": "BAD_REFRESH_TOKEN",
                                     "message": "missing or unknown refresh token"}, 400)
            access = f"oauth-access-{len(self.oauth_uses) + 1}"
            self.tokens.add(access)
            self.oauth_uses[access] = 0
            return JSONResponse({"access_token": access, "token_type": "bearer",
                                 "refresh_token": form["refresh_token"], "expires_in": 1800})

        @app.get("/crm/v3/objects/p_html")
        async def html() -> HTMLResponse:
            return HTMLResponse("<html><body>Service Unavailable</body></html>")

        @app.get("/crm/v3/objects/p_down")
        async def down() -> HTMLResponse:
            return HTMLResponse("<html><body>Down for maintenance</body></html>", 503)

        @app.get("/crm/v3/objects/p_error")
        async def error_body() -> Response:
            return JSONResponse({"status": "error", "message": "internal error",
                                 "category": "INTERNAL_ERROR", "correlationId": "c0ffee"})

        @app.get("/crm/v3/objects/p_shapeless")
        async def shapeless() -> Obj:
            return {"data": [{"id": "1"}], "paging": {}}

        @app.get("/crm/v3/objects/p_loop")
        async def loop(request: Request) -> Obj:
            self.seen.append(("GET", request.url.path, dict(request.query_params)))
            objs = self.objects["p_loop"]
            return {"results": [self.shaped("p_loop", o, []) for o in objs],
                    "paging": {"next": {"after": "MTA%3D", "link": "unused"}}}

        @app.get("/crm/v3/objects/{name}")
        async def listing(request: Request, name: str, limit: int = 10,
                          after: str | None = None, properties: str = "") -> Response:
            self.seen.append(("GET", request.url.path, dict(request.query_params)))
            if limit > 100:
                return error(400, "limit may not exceed 100")
            objs = sorted(self.objects.get(name, []), key=lambda o: int(o["id"]))
            start = _offset(after)
            wanted = [p for p in properties.split(",") if p]
            body: Obj = {"results": [self.shaped(name, o, wanted)
                                     for o in objs[start:start + limit]]}
            if start + limit < len(objs):
                nxt = _token(start + limit)
                body["paging"] = {"next": {
                    "after": nxt, "link": f"{self.link_origin}/crm/v3/objects/{name}?after={nxt}"}}
            return JSONResponse(body)

        @app.get("/crm/v3/objects/{name}/{ident}")
        async def single(request: Request, name: str, ident: str, properties: str = ""
                         ) -> Response:
            self.seen.append(("GET", request.url.path, dict(request.query_params)))
            wanted = [p for p in properties.split(",") if p]
            for obj in self.objects.get(name, []):
                if obj["id"] == ident:
                    return JSONResponse(self.shaped(name, obj, wanted))
            return error(404, "Object not found.  objectId are usually numeric.",
                         "OBJECT_NOT_FOUND")

        @app.post("/crm/v3/objects/{name}/search")
        async def search(request: Request, name: str) -> Response:
            body = json.loads(await request.body())
            self.seen.append(("POST", request.url.path, body))
            groups = body.get("filterGroups") or []
            if len(groups) > 5 or any(len(g["filters"]) > 6 for g in groups):
                return error(400, "too many filters")
            for group in groups:
                for flt in group["filters"]:
                    if flt["operator"] not in OPERATORS:
                        return error(400, f"operator {flt['operator']} not emulated")
            sorts = body.get("sorts") or []
            if len(sorts) > 1:
                return error(400, "only one sort is allowed")
            limit = int(body.get("limit", 10))
            if limit > 200:
                return error(400, "limit may not exceed 200")
            offset = int(body.get("after") or 0)
            if offset >= self.window:
                return error(400, f"Paging past {self.window} results is not supported.")
            key = json.dumps([name, groups, sorts], sort_keys=True)
            objs = self._matched.get(key)
            if objs is None:  # the pages of one search share its result (10,000s of records)
                objs = [o for o in self.objects.get(name, [])
                        if not groups or any(all(self.matches(o, f) for f in g["filters"])
                                             for g in groups)]
                if sorts:
                    prop = sorts[0]["propertyName"]
                    # Ties in the sort come in no particular order: a fixed shuffle by id.
                    def order(o: Obj) -> tuple[float, int]:
                        value = o["properties"][prop]
                        return (ms(value) if prop in DATETIME_PROPS else float(value),
                                int(o["id"]) * 7919 % 997)

                    objs.sort(key=order)
                self._matched = {key: objs}
            wanted = body.get("properties") or []
            page = objs[offset:min(offset + limit, self.window)]
            out: Obj = {"total": len(objs), "results": [self.shaped(name, o, wanted)
                                                        for o in page]}
            if offset + limit < len(objs):
                out["paging"] = {"next": {"after": str(offset + limit)}}
            return JSONResponse(out)

        @app.post("/crm/v3/objects/{name}/batch/read")
        async def batch_read(request: Request, name: str) -> Response:
            body = json.loads(await request.body())
            self.seen.append(("POST", request.url.path, body))
            if len(body["inputs"]) > 100:
                return error(400, "at most 100 inputs per batch read")
            by_id = {o["id"]: o for o in self.objects.get(name, [])}
            wanted = body.get("properties") or []
            results = [self.shaped(name, by_id[i["id"]], wanted) for i in body["inputs"]
                       if i["id"] in by_id]
            missing = [i["id"] for i in body["inputs"] if i["id"] not in by_id]
            answer: Obj = {"status": "COMPLETE", "results": results}
            if missing:
                answer.update(numErrors=1, errors=[{
                    "status": "error", "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some objects, they may be deleted or not exist.",
                    "context": {"ids": missing}}])
            return JSONResponse(answer, status_code=207 if missing else 200)

        @app.post("/crm/v4/associations/{source}/{target}/batch/read")
        async def associations(request: Request, source: str, target: str) -> Response:
            body = json.loads(await request.body())
            self.seen.append(("POST", request.url.path, body))
            table = self.associations.get((source, target), {})
            results, errors = [], []
            for item in body["inputs"]:
                linked = table.get(item["id"])
                if not linked:
                    errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                                   "message": f"No {target} is associated with {item['id']}.",
                                   "context": {"fromObjectId": [item["id"]]}})
                    continue
                results.append({"from": {"id": item["id"]}, "to": [
                    {"toObjectId": int(to), "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 1 if primary else 279,
                         "label": "Primary" if primary else None}]}
                    for to, primary in linked]})
            answer = {"status": "COMPLETE", "results": results, "numErrors": len(errors),
                      "errors": errors, "startedAt": "2024-01-01T00:00:00Z",
                      "completedAt": "2024-01-01T00:00:01Z"}
            return JSONResponse(answer, status_code=207 if errors else 200)

        @app.get("/crm/v3/properties/{name}")
        async def properties(name: str) -> Obj:
            names: dict[str, None] = {}
            for obj in self.objects.get(name, []):
                names.update(dict.fromkeys(obj["properties"]))
            kind = {**dict.fromkeys(DATETIME_PROPS, "datetime"),
                    **dict.fromkeys(NUMBER_PROPS, "number")}
            return {"results": [{"name": n, "label": n, "type": kind.get(n, "string"),
                                 "fieldType": "text"} for n in sorted(names)]}

        return app
