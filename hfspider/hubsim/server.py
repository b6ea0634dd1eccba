"""The two origins, the request pipeline, and the emulator's life: start, ready line, stop.

The API origin (`http://localhost:P`) and the CDN origin (`http://127.0.0.1:Q`) are two
aiohttp applications over one `Hub`. Every API request goes through `api_pipeline`:

    identify (token -> user and tier, else anon:<ip>) -> rate limit (429 when the bucket is
    empty) -> invalid token (401) -> status faults (5xx, CloudFront 429) -> slow fault ->
    handler -> JSON body faults -> log entry

and every answer gets the Hub's headers (`RateLimit`, `RateLimit-Policy`, `X-Request-Id`,
CORS) just before it is sent. The CDN pipeline is the same without identities and limits.
Admin routes (`/_hubsim/...`, API origin) bypass the pipeline: they are neither limited,
faulted nor logged.

`serve` prints `ready http://localhost:P` once both origins accept connections and returns
after SIGTERM or SIGINT, when in-flight answers had a moment to finish.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web

from hfspider.hubsim.content import Blob
from hfspider.hubsim.corpus import build_corpus
from hfspider.hubsim.faults import JSON_BODY_FAULTS
from hfspider.hubsim.listing import BadRequestError
from hfspider.hubsim.log import LogEntry
from hfspider.hubsim.options import Settings
from hfspider.hubsim.responses import (
    CONTEXT,
    Context,
    error_response,
    json_response,
    redirect_response,
    send,
)
from hfspider.hubsim.routes import Hub, RepoRenamedError
from hfspider.hubsim.wire import INVALID_CREDENTIALS, HubError

HUB = web.AppKey("hub", Hub)
ADMIN_PREFIX = "/_hubsim/"
ANY_PATH = r"/{tail:[\s\S]*}"  # also paths with an encoded line break in a file name
API_HOST = "localhost"
CDN_HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT = 2.0
MAX_LOG_PAGE = 100_000
EXPOSED_HEADERS = (
    "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,"
    "Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag"
)
FAULT_STATUS = {"500": 500, "502": 502, "503": 503, "504": 504, "cloudfront-429": 429}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bucket_of(raw_path: str) -> str:
    """The rate-limit bucket of an API-origin path."""
    if raw_path.startswith("/api/resolve-cache/"):
        return "resolvers"
    if raw_path.startswith("/api/"):
        return "api"
    segs = raw_path.split("/")
    if (len(segs) > 3 and segs[2] == "resolve") or (len(segs) > 4 and segs[3] == "resolve"):
        return "resolvers"
    return "pages"


def _context(request: web.Request, hub: Hub, origin: str) -> tuple[Context, bool]:
    """The request's context, and whether it carried an unknown token."""
    raw_path = request.raw_path
    authorization = request.headers.get("Authorization")
    token = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        token = hub.settings.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
    ctx = Context(
        start=time.time(),
        origin=origin,
        bucket=bucket_of(raw_path.split("?", 1)[0]) if origin == "api" else None,
        auth=authorization is not None,
        user=token.user if token else None,
        tier=token.tier if token else "anonymous",
        identity=(token.user if token else f"anon:{request.remote}") if origin == "api" else None,
        key=f"{request.method} {raw_path}",
    )
    return ctx, authorization is not None and token is None


def _failure(exc: Exception) -> web.Response:
    """Turn what a handler raised into the Hub's answer."""
    if isinstance(exc, HubError):
        return error_response(exc)
    if isinstance(exc, RepoRenamedError):
        return redirect_response(307, exc.location)
    if isinstance(exc, BadRequestError):
        return error_response(HubError(400, str(exc)))
    if isinstance(exc, web.HTTPException):  # aiohttp's own, e.g. an unreadable request body
        return error_response(HubError(exc.status, exc.reason))
    traceback.print_exception(exc, file=sys.stderr)
    return error_response(HubError(500, "Internal Error"))


async def _admit(
    hub: Hub, request: web.Request, ctx: Context, bad_token: bool
) -> web.Response | None:
    """Limits, token check and status faults, in the Hub's order; None lets the request in."""
    if ctx.bucket is not None:
        assert ctx.identity is not None
        ctx.verdict = verdict = hub.limiter.take(ctx.identity, ctx.tier, ctx.bucket)
        if not verdict.allowed:
            message = (
                f'Rate limit reached for the "{verdict.bucket}" bucket; retry in {verdict.reset} s.'
            )
            return error_response(
                HubError(429, message, headers={"Retry-After": str(verdict.reset)})
            )
    if bad_token:
        return error_response(HubError(401, INVALID_CREDENTIALS))
    if hub.faults:
        fault = hub.faults.status_fault(ctx.key, ctx.scope)
        if fault is not None:
            ctx.fault = fault
            if fault == "cloudfront-429":
                return web.Response(status=429, text="Too Many Requests", content_type="text/plain")
            return error_response(HubError(FAULT_STATUS[fault], "Internal Error (injected fault)"))
        if hub.faults.fires("slow", ctx.key, ctx.scope):
            ctx.fault = "slow"
            await asyncio.sleep(hub.settings.slow_seconds)
    return None


async def _body_faults(
    hub: Hub, request: web.Request, ctx: Context, response: web.StreamResponse
) -> web.StreamResponse:
    """Faults on an unsent in-memory body (JSON, text): cut it, truncate or reset it."""
    if not isinstance(response, web.Response) or response.prepared:
        return response
    body = response.body if isinstance(response.body, bytes) else b""
    if request.method == "HEAD" or not body:
        return response
    if hub.faults:
        kinds = (
            JSON_BODY_FAULTS
            if response.content_type == "application/json"
            else ("reset", "truncate")
        )
        fault = hub.faults.body_fault(ctx.key, ctx.scope, kinds)
        if fault is not None:
            cut = hub.faults.cut(fault, ctx.key, len(body))
            headers = {k: v for k, v in response.headers.items() if k != "Content-Length"}
            if fault == "malformed-json":
                ctx.fault = fault
                return web.Response(body=body[:cut], status=response.status, headers=headers)
            return await send(
                request, response.status, headers, Blob(body), 0, len(body), fault, cut
            )
    ctx.bytes = len(body)
    return response


def _log(hub: Hub, request: web.Request, ctx: Context, status: int) -> None:
    verdict = ctx.verdict
    path, _, query = request.raw_path.partition("?")
    hub.log.add(
        LogEntry(
            seq=0,
            time=ctx.start,
            duration=time.time() - ctx.start,
            method=request.method,
            path=path,
            query=query,
            origin=ctx.origin,
            bucket=ctx.bucket,
            status=status,
            bytes=ctx.bytes,
            auth=ctx.auth,
            identity=ctx.identity,
            range=request.headers.get("Range"),
            window=verdict.window if verdict else None,
            counted=bool(verdict and verdict.allowed),
            fault=ctx.fault,
        )
    )


def _pipeline(origin: str) -> Callable:
    @web.middleware
    async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        hub = request.app[HUB]
        ctx, bad_token = _context(request, hub, origin)
        request[CONTEXT] = ctx
        response: web.StreamResponse | None = None
        try:
            response = await _admit(hub, request, ctx, bad_token)
            if response is None:
                response = await handler(request)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer
            response = _failure(exc)
        try:
            response = await _body_faults(hub, request, ctx, response)
        finally:
            _log(hub, request, ctx, response.status)
        return response

    return pipeline


async def _hub_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The headers every API-origin answer carries, set just before it is sent."""
    ctx: Context | None = request.get(CONTEXT)
    if ctx is None or ctx.origin != "api":
        return
    headers = response.headers
    trace = request.headers.get("X-Amzn-Trace-Id")
    request_id = f"Root=1-{int(ctx.start):08x}-{random.getrandbits(96):024x}"
    headers["X-Request-Id"] = f"{request_id};{trace}" if trace else request_id
    headers["X-Powered-By"] = "huggingface-moon"
    headers["Access-Control-Allow-Origin"] = "https://huggingface.co"
    headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    headers.setdefault("Vary", "Origin")
    if ctx.verdict is not None and ctx.fault != "cloudfront-429":
        headers.update(ctx.verdict.headers(request.app[HUB].settings.window))


# -- admin --------------------------------------------------------------------------------


async def _info(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    s = hub.settings
    return json_response(
        {
            "api": f"http://{API_HOST}:{request.url.port}",
            "cdn": hub.cdn_origin,
            "models": s.models,
            "seed": s.seed,
            "samples": s.samples,
            "huge_files": s.huge_files,
            "huge_size": s.huge_size,
            "window": s.window,
            "cdn_rate_mb_s": s.cdn_rate / 1e6,
            "version": hub.corpus.version,
        }
    )


async def _log_page(request: web.Request) -> web.Response:
    try:
        since = int(request.query.get("since", "0"))
        limit = min(int(request.query.get("limit", str(MAX_LOG_PAGE))), MAX_LOG_PAGE)
    except ValueError:
        return error_response(HubError(400, "since and limit are integers"))
    return json_response(request.app[HUB].log.since(since, limit))


async def _stats(request: web.Request) -> web.Response:
    return json_response(request.app[HUB].log.stats.to_json())


async def _mutate(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read() or b"null")
        return json_response(request.app[HUB].mutator.from_request(body))
    except KeyError as exc:
        return error_response(HubError(404, str(exc.args[0])))
    except (ValueError, TypeError) as exc:
        return error_response(HubError(400, str(exc)))


async def _admin_unknown(request: web.Request) -> web.Response:
    return error_response(HubError(404, f"no admin endpoint {request.method} {request.path}"))


async def _mutations(request: web.Request) -> web.Response:
    return json_response([m.to_json() for m in request.app[HUB].corpus.mutations])


# -- life -------------------------------------------------------------------------------------


def create_hub(settings: Settings) -> Hub:
    corpus = build_corpus(
        settings.models,
        settings.seed,
        samples=settings.samples,
        huge_files=settings.huge_files,
        huge_size=settings.huge_size,
    )
    return Hub(settings, corpus)


def _apps(hub: Hub) -> tuple[web.Application, web.Application]:
    api = web.Application(middlewares=[_pipeline("api")], client_max_size=16 << 20)
    api[HUB] = hub
    api.router.add_get(ADMIN_PREFIX + "info", _info)
    api.router.add_get(ADMIN_PREFIX + "log", _log_page)
    api.router.add_get(ADMIN_PREFIX + "stats", _stats)
    api.router.add_post(ADMIN_PREFIX + "mutate", _mutate)
    api.router.add_get(ADMIN_PREFIX + "mutations", _mutations)
    api.router.add_route("*", ADMIN_PREFIX + "{tail:.*}", _admin_unknown)
    api.router.add_route("*", ANY_PATH, hub.api)
    api.on_response_prepare.append(_hub_headers)
    cdn = web.Application(middlewares=[_pipeline("cdn")])
    cdn[HUB] = hub
    cdn.router.add_route("*", ANY_PATH, hub.cdn)
    return api, cdn


async def _mutate_on_schedule(hub: Hub) -> None:
    every, batch = hub.settings.mutate_every, hub.settings.mutate_batch
    while True:
        await asyncio.sleep(every)
        for _ in range(batch):
            hub.mutator.random("schedule")


async def serve(settings: Settings, ready: Callable[[str], None]) -> None:
    """Run until SIGTERM or SIGINT; `ready(url)` is called once both origins listen."""
    hub = create_hub(settings)
    api_app, cdn_app = _apps(hub)
    runners = [
        web.AppRunner(app, access_log=None, handle_signals=False) for app in (api_app, cdn_app)
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    schedule = None
    try:
        ports = []
        for runner, port in zip(runners, (settings.port, settings.cdn_port), strict=True):
            await runner.setup()
            sock = socket.create_server((settings.bind, port), reuse_port=False)
            site = web.SockSite(runner, sock, shutdown_timeout=SHUTDOWN_TIMEOUT)
            await site.start()
            ports.append(sock.getsockname()[1])
        hub.cdn_origin = f"http://{CDN_HOST}:{ports[1]}"
        if settings.mutate_every > 0:
            schedule = asyncio.create_task(_mutate_on_schedule(hub))
        ready(f"http://{API_HOST}:{ports[0]}")
        await stop.wait()
    finally:
        if schedule is not None:
            schedule.cancel()
        await asyncio.gather(*(runner.cleanup() for runner in runners))
