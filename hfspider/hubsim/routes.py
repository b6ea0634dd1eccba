"""The endpoints: one handler per Hub endpoint, over the emulator's shared state (`Hub`).

API origin (`http://localhost:P`), routed on the raw path so that `%2F` inside a revision or
a file path stays one segment:

    GET  /api/models                                  listing (hfspider.hubsim.listing)
    GET  /api/models/{id}[/revision/{rev}]            model info (blobs, securityStatus, expand)
    GET  /api/models/{id}/tree/{rev}[/{path}]         tree (recursive, expand, limit, cursor)
    POST /api/models/{id}/paths-info/{rev}            form or JSON `paths`, `expand`
    GET  /api/models/{id}/refs                        branches, tags, converts (include_prs)
    GET  /api/models/{id}/commits/{rev}               history, newest first
    HEAD|GET /{id}/resolve/{rev}/{path}               307 to resolve-cache, or 302 to the CDN
    HEAD|GET /api/resolve-cache/models/{id}/{commit}/{path}   regular file bytes (Range, 304)
    GET  /api/datasets[/{id}]                         dataset listing and info
    GET  /api/whoami-v2                               the token's user
    GET  /{id}, /                                     HTML pages ("pages" bucket)

CDN origin (`http://127.0.0.1:Q`): `HEAD|GET /repos/{_id}/{sha256}?Expires=..&Signature=..`,
signed URLs valid for an hour, Range and 416 as a CDN answers them.

Access rules: a missing or private repo is 401 (anonymous) or 404 (token), both with
`X-Error-Code: RepoNotFound`; an old id is a relative 307 to the new one, query kept; a
disabled repo is 403; a gated repo's metadata is public but its files need a token ("auto")
or an approved user ("manual", `--gated-access USER`, or the author).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from hfspider.hubsim.content import Digest, DigestStore, Keystream
from hfspider.hubsim.corpus import Corpus, Model
from hfspider.hubsim.faults import FILE_BODY_FAULTS, Faults
from hfspider.hubsim.listing import (
    DATASET_EXPAND,
    MAX_LIMIT,
    MODEL_EXPAND,
    TRUE_VALUES,
    BadRequestError,
    SortedView,
    listing_link,
    next_link,
    parse_query,
)
from hfspider.hubsim.log import RequestLog
from hfspider.hubsim.mutations import Mutator
from hfspider.hubsim.options import Settings
from hfspider.hubsim.ratelimit import RateLimiter
from hfspider.hubsim.repofiles import RepoFile, Snapshot, snapshot
from hfspider.hubsim.responses import (
    context,
    json_response,
    parse_range,
    redirect_response,
    send,
)
from hfspider.hubsim.wire import (
    HEX40,
    INVALID_USER,
    TEXT_TYPE,
    HubError,
    commits,
    dataset_item,
    disabled,
    entry_not_found,
    file_not_found,
    find_revision,
    gated,
    last_commit_of,
    listing_item,
    model_expanded,
    model_info,
    refs,
    repo_not_found,
    revision_not_found,
    tree_directory,
    tree_file,
    tree_oid,
    whoami,
)

MODEL_OPS = ("revision", "tree", "paths-info", "refs", "commits")
MAX_PATHS = 2000
TREE_PAGE_EXPANDED = 50
CDN_URL_LIFETIME = 3600


class RepoRenamedError(Exception):
    """A renamed repo: answer a relative 307 to `location`."""

    def __init__(self, location: str) -> None:
        self.location = location


class Hub:
    """State shared by both origins: the corpus and everything that observes or bends it."""

    def __init__(self, settings: Settings, corpus: Corpus) -> None:
        self.settings = settings
        self.corpus = corpus
        self.digests = DigestStore(settings.cache_dir)
        self.faults = Faults(settings.faults, settings.seed)
        self.limiter = RateLimiter(settings.window, settings.quotas)
        self.log = RequestLog(settings.log_max)
        self.mutator = Mutator(corpus)
        self.cdn_origin = ""  # set once the CDN socket is bound
        self._secret = os.urandom(16)
        self._cdn_sources: dict[str, Keystream] = {}
        self._views: dict[tuple[str, str], tuple[int, SortedView]] = {}

    # -- shared checks --------------------------------------------------------------------

    def model(self, request: web.Request, repo_id: str, rebuild: Callable[[str], str]) -> Model:
        """The repo the caller may see, following renames (`rebuild(new_id)` -> location)."""
        ctx = context(request)
        model, renamed = self.corpus.lookup(repo_id)
        if model is None or not model.visible_to(ctx.user):
            raise repo_not_found(ctx.user is not None)
        if renamed:
            query = request.query_string
            raise RepoRenamedError(rebuild(model.id) + (f"?{query}" if query else ""))
        if model.disabled:
            raise disabled()
        return model

    def check_download(self, request: web.Request, model: Model) -> None:
        """Gated repos: metadata is public, files are not."""
        user = context(request).user
        if not model.gated:
            return
        if user is not None and (
            model.gated == "auto" or user == model.author or user in self.settings.gated_access
        ):
            return
        raise gated(model, user is not None)

    def view(self, kind: str, sort: str) -> SortedView:
        """Items of a listing in sort order, rebuilt when the corpus changed."""
        cached = self._views.get((kind, sort))
        if cached is None or cached[0] != self.corpus.version:
            items = self.corpus.models.values() if kind == "models" else self.corpus.datasets()
            cached = (self.corpus.version, SortedView(items, sort))
            self._views[(kind, sort)] = cached
        return cached[1]

    async def digests_of(self, files: list[RepoFile]) -> dict[str, Digest]:
        found = await asyncio.gather(*(self.digests.digest_async(f.source) for f in files))
        return {f.path: digest for f, digest in zip(files, found, strict=True)}

    def cdn_url(self, model: Model, digest: Digest, source: Keystream, name: str) -> str:
        """A signed CDN URL for an LFS file, valid for an hour."""
        self._cdn_sources[digest.sha256] = source
        expires = int(time.time()) + CDN_URL_LIFETIME
        path = f"/repos/{model.object_id}/{digest.sha256}"
        disposition = quote(f"inline; filename*=UTF-8''{quote(name)};", safe="")
        return (
            f"{self.cdn_origin}{path}?response-content-disposition={disposition}"
            f"&Expires={expires}&Signature={self._sign(path, expires)}"
        )

    def _sign(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()

    # -- API origin -----------------------------------------------------------------------

    async def api(self, request: web.Request) -> web.StreamResponse:
        """Dispatch an API-origin request by its raw path (see the module docstring)."""
        segs = request.raw_path.split("?", 1)[0].split("/")[1:]
        method = request.method
        if segs[0] == "api" and len(segs) > 1:
            kind = segs[1]
            if kind == "models" and len(segs) == 2 and method in ("GET", "HEAD"):
                return await self.list_models(request)
            if kind == "models" and len(segs) > 2:
                return await self.model_endpoint(request, segs[2:])
            if kind == "resolve-cache" and len(segs) > 5 and segs[2] == "models":
                if method in ("GET", "HEAD"):
                    return await self.resolve_cache(request, segs[3:])
            if kind == "datasets" and method in ("GET", "HEAD"):
                if len(segs) == 2:
                    return await self.list_datasets(request)
                return self.dataset(segs[2:])
            if kind == "whoami-v2" and len(segs) == 2:
                return self.whoami(request)
            raise HubError(404, "Not Found")
        for at in (1, 2):
            if len(segs) > at + 2 and segs[at] == "resolve" and method in ("GET", "HEAD"):
                return await self.resolve(request, segs[:at], segs[at + 1 :])
        return self.page(request, segs)

    async def list_models(self, request: web.Request) -> web.Response:
        ctx = context(request)
        query = parse_query(request.query, self.settings.default_limit, MODEL_EXPAND)
        items, cursor = self.view("models", query.sort).page(
            query, lambda m: m.listed and m.visible_to(ctx.user)
        )
        body = [
            listing_item(
                self.corpus,
                m,
                full=query.full,
                config=query.config,
                card_data=query.card_data,
                expand=query.expand,
            )
            for m in items
        ]
        headers = {}
        if cursor is not None:
            headers["Link"] = listing_link(
                _origin(request), "/api/models", request.query, query, cursor
            )
        response = json_response(body, headers=headers)
        if self.faults:
            for m in items:
                if (
                    self.faults.fires("flap", f"listed {m.id}", ctx.scope)
                    and m.id in self.corpus.models
                ):
                    self.mutator.update(self.corpus.models[m.id], "fault")
                    ctx.fault = "flap"
        return response

    async def model_endpoint(self, request: web.Request, rest: list[str]) -> web.StreamResponse:
        if len(rest) >= 3 and rest[2] in MODEL_OPS:
            id_segs, op = rest[:2], rest[2:]
        elif len(rest) >= 2 and rest[1] in MODEL_OPS:
            id_segs, op = rest[:1], rest[1:]
        elif len(rest) <= 2:
            id_segs, op = rest, []
        else:
            raise HubError(404, "Not Found")
        tail = "".join(f"/{s}" for s in op)
        model = self.model(request, _decode(id_segs), lambda new: f"/api/models/{quote(new)}{tail}")
        name, args = (op[0], [unquote(s) for s in op[1:]]) if op else ("", [])
        method = request.method
        if (
            name in ("", "revision")
            and method in ("GET", "HEAD")
            and len(args) == (name == "revision")
        ):
            return await self.info(request, model, args[0] if args else None)
        if name == "tree" and args and method in ("GET", "HEAD"):
            return await self.tree(request, model, args[0], "/".join(args[1:]).strip("/"))
        if name == "paths-info" and len(args) == 1 and method == "POST":
            return await self.paths_info(request, model, args[0])
        if name == "refs" and not args and method in ("GET", "HEAD"):
            return json_response(refs(model, request.query.get("include_prs") in TRUE_VALUES))
        if name == "commits" and len(args) == 1 and method in ("GET", "HEAD"):
            revision = find_revision(model, args[0])
            if revision is None:
                raise revision_not_found(args[0])
            history = commits(model, revision)
            return json_response(history, headers={"X-Total-Count": str(len(history))})
        raise HubError(404, "Not Found")

    async def info(self, request: web.Request, model: Model, rev: str | None) -> web.Response:
        params = request.query
        expand = tuple(params.getall("expand", ())) + tuple(params.getall("expand[]", ()))
        unknown = [name for name in expand if name not in MODEL_EXPAND]
        if unknown:
            raise BadRequestError(
                f'"expand" must be one of {", ".join(MODEL_EXPAND)}; got "{unknown[0]}"'
            )
        blobs = params.get("blobs") in TRUE_VALUES
        security = params.get("securityStatus") in TRUE_VALUES
        if expand and (blobs or security):
            raise BadRequestError('"expand" cannot be combined with "blobs" or "securityStatus"')
        revision = model.revisions[-1] if rev is None else find_revision(model, rev)
        if revision is None:
            raise revision_not_found(rev or "main")
        recording = model.recording
        if recording is not None:
            recorded = (
                recording.bodies.get(request.query_string)
                if revision is model.revisions[-1]
                else (recording.commit_bodies.get(revision.sha) if not params else None)
            )
            if recorded is not None:
                return json_response(recorded)
        if expand:
            return json_response(model_expanded(self.corpus, model, revision, expand))
        digests = None
        if blobs:
            digests = await self.digests_of(list(snapshot(self.corpus, model, revision).files))
        return json_response(
            model_info(self.corpus, model, revision, digests=digests, security=security)
        )

    async def tree(self, request: web.Request, model: Model, rev: str, path: str) -> web.Response:
        revision = find_revision(model, rev)
        if revision is None:
            raise revision_not_found(rev)
        snap = snapshot(self.corpus, model, revision)
        if path and path not in snap.directories:
            raise entry_not_found(path, rev)
        params = request.query
        recursive = params.get("recursive") in TRUE_VALUES
        expand = params.get("expand") in TRUE_VALUES
        prefix = f"{path}/" if path else ""

        def wanted(p: str) -> bool:
            return p.startswith(prefix) and (recursive or "/" not in p[len(prefix) :])

        entries = sorted(
            [d for d in snap.directories if wanted(d)]
            + [f.path for f in snap.files if wanted(f.path)]
        )
        limit = _page_size(params.get("limit"), TREE_PAGE_EXPANDED if expand else MAX_LIMIT)
        start = _tree_cursor(params.get("cursor")) if "cursor" in params else 0
        page = entries[start : start + limit]
        answer = await self._entries(model, snap, page, expand)
        headers = {}
        if start + limit < len(entries):
            pairs = [(k, v) for k, v in params.items() if k != "cursor"]
            token = base64.b64encode(json.dumps({"offset": start + limit}).encode()).decode()
            raw_path = request.raw_path.split("?", 1)[0]
            headers["Link"] = next_link(_origin(request), raw_path, pairs, token)
        return json_response(answer, headers=headers)

    async def paths_info(self, request: web.Request, model: Model, rev: str) -> web.Response:
        revision = find_revision(model, rev)
        if revision is None:
            raise revision_not_found(rev)
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                raise BadRequestError("Invalid JSON body") from None
            paths = data.get("paths") if isinstance(data, dict) else None
            expand = isinstance(data, dict) and data.get("expand") is True
        else:
            try:
                form = await request.post()
            except ValueError:  # a multipart body without boundary, undecodable text, ...
                raise BadRequestError("Invalid form body") from None
            paths = form.getall("paths", [])
            expand = form.get("expand") in TRUE_VALUES
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise BadRequestError('"paths" must be a list of strings')
        if len(paths) > MAX_PATHS:
            raise BadRequestError(f'"paths" holds at most {MAX_PATHS} paths')
        snap = snapshot(self.corpus, model, revision)
        found = [
            p
            for p in dict.fromkeys(p.strip("/") for p in paths)
            if snap.get(p) is not None or p in snap.directories
        ]
        return json_response(await self._entries(model, snap, found, expand))

    async def _entries(
        self, model: Model, snap: Snapshot, paths: list[str], expand: bool
    ) -> list[dict]:
        """Tree entries (files and directories) for paths known to be in `snap`."""
        dirs = [p for p in paths if snap.get(p) is None]
        needed = [
            f
            for f in snap.files
            if f.path in paths or any(f.path.startswith(d + "/") for d in dirs)
        ]
        digests = await self.digests_of(needed)
        entries = []
        for path in paths:
            commit = last_commit_of(model, snap, path) if expand else None
            f = snap.get(path)
            if f is not None:
                entries.append(tree_file(path, digests[path], commit))
            else:
                entries.append(tree_directory(path, tree_oid(snap, path, digests), commit))
        return entries

    async def resolve(
        self, request: web.Request, id_segs: list[str], rest: list[str]
    ) -> web.Response:
        rev, path = unquote(rest[0]), "/".join(unquote(s) for s in rest[1:])
        tail = "".join(f"/{s}" for s in ["resolve", *rest])
        model = self.model(request, _decode(id_segs), lambda new: f"/{quote(new)}{tail}")
        revision = find_revision(model, rev)
        if revision is None:
            raise revision_not_found(rev)
        self.check_download(request, model)
        f = snapshot(self.corpus, model, revision).get(path)
        if f is None:
            raise file_not_found(revision.sha)
        digest = await self.digests.digest_async(f.source)
        name = path.rsplit("/", 1)[-1]
        headers = {
            "X-Repo-Commit": revision.sha,
            "Accept-Ranges": "bytes",
            "Content-Disposition": _disposition(name),
        }
        if isinstance(f.source, Keystream):
            headers.update(
                {
                    "X-Linked-Size": str(digest.size),
                    "X-Linked-Etag": f'"{digest.sha256}"',
                    "Cache-Control": "no-store",
                }
            )
            return redirect_response(302, self.cdn_url(model, digest, f.source, name), headers)
        origin_path = quote(f"/{model.id}/resolve/{rev}/{path}", safe="")
        etag = quote(f'"{digest.blob_id}"', safe="")
        location = (
            f"/api/resolve-cache/models/{quote(model.id)}/{revision.sha}/{quote(path)}"
            f"?{origin_path}=&etag={etag}"
        )
        headers["X-Linked-Etag"] = f'"{digest.blob_id}"'
        return redirect_response(307, location, headers)

    async def resolve_cache(self, request: web.Request, rest: list[str]) -> web.StreamResponse:
        at = next((k for k in (1, 2) if k < len(rest) - 1 and HEX40.fullmatch(rest[k])), None)
        if at is None:
            raise HubError(404, "Not Found")
        commit, path = rest[at], "/".join(unquote(s) for s in rest[at + 1 :])
        tail = "".join(f"/{s}" for s in rest[at:])
        model = self.model(
            request, _decode(rest[:at]), lambda new: f"/api/resolve-cache/models/{quote(new)}{tail}"
        )
        revision = find_revision(model, commit)
        if revision is None:
            raise revision_not_found(commit)
        self.check_download(request, model)
        f = snapshot(self.corpus, model, revision).get(path)
        if f is None:
            raise file_not_found(revision.sha)
        etag = f'"{self.digests.digest(f.source).blob_id}"'
        headers = {"ETag": etag, "X-Repo-Commit": revision.sha, "Accept-Ranges": "bytes"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        headers.update(
            {
                "Content-Type": TEXT_TYPE,
                "Content-Disposition": _disposition(path.rsplit("/", 1)[-1]),
            }
        )
        return await self._send_file(request, headers, f)

    async def _send_file(
        self, request: web.Request, headers: dict[str, str], f: Any
    ) -> web.StreamResponse:
        """A file body with Range support and the body faults of its scope."""
        size = f.size
        ctx = context(request)
        ranged = request.headers.get("Range")
        if ranged and self.faults and self.faults.fires("ignore-range", ctx.key, ctx.scope):
            ctx.fault, ranged = "ignore-range", None  # like a server without Range support
        span = parse_range(ranged, size)
        status, (start, end) = (200, (0, size)) if span is None else (206, span)
        if span is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        fault, cut = None, 0
        if self.faults and request.method == "GET":
            fault = self.faults.body_fault(ctx.key, ctx.scope, FILE_BODY_FAULTS)
            cut = self.faults.cut(fault, ctx.key, end - start) if fault else 0
        rate = self.settings.cdn_rate if ctx.origin == "cdn" else 0.0
        return await send(request, status, headers, f.source, start, end, fault, cut, rate)

    async def list_datasets(self, request: web.Request) -> web.Response:
        query = parse_query(request.query, self.settings.default_limit, DATASET_EXPAND)
        items, cursor = self.view("datasets", query.sort).page(query, lambda d: True)
        headers = {}
        if cursor is not None:
            headers["Link"] = listing_link(
                _origin(request), "/api/datasets", request.query, query, cursor
            )
        return json_response([dataset_item(d, query.expand) for d in items], headers=headers)

    def dataset(self, id_segs: list[str]) -> web.Response:
        dataset_id = _decode(id_segs)
        found = next((d for d in self.corpus.datasets() if d.id == dataset_id), None)
        if found is None or len(id_segs) > 2:
            raise repo_not_found(True)
        return json_response(
            {**dataset_item(found, None), "siblings": [{"rfilename": "README.md"}]}
        )

    def whoami(self, request: web.Request) -> web.Response:
        ctx = context(request)
        if ctx.user is None:
            headers = {
                "WWW-Authenticate": 'Bearer realm="Authentication required", charset="UTF-8"'
            }
            raise HubError(401, INVALID_USER, headers=headers)
        return json_response(whoami(ctx.user, ctx.tier))

    def page(self, request: web.Request, segs: list[str]) -> web.Response:
        """HTML pages: the home page and repo pages; anything else is a 404 page."""
        user = context(request).user
        repo_id = _decode(segs) if 1 <= len(segs) <= 2 and all(segs) else None
        model = self.corpus.get(repo_id) if repo_id else None
        if segs == [""]:
            title, status = "Hugging Face (hubsim)", 200
        elif model is not None and model.visible_to(user):
            title, status = model.id, 200
        else:
            title, status = "404", 404
        title = html.escape(title)
        body = f"<!doctype html><title>{title}</title><h1>{title}</h1>"
        return web.Response(text=body, status=status, content_type="text/html")

    # -- CDN origin -----------------------------------------------------------------------

    async def cdn(self, request: web.Request) -> web.StreamResponse:
        segs = request.path.split("/")[1:]
        if len(segs) != 3 or segs[0] != "repos" or request.method not in ("GET", "HEAD"):
            raise HubError(404, "Not Found", text=True)
        path = request.path
        try:
            expires = int(request.query.get("Expires", ""))
        except ValueError:
            expires = 0
        signature = request.query.get("Signature", "")
        if expires < time.time() or not hmac.compare_digest(signature, self._sign(path, expires)):
            raise HubError(403, "Access Denied", text=True)
        source = self._cdn_sources.get(segs[2])
        if source is None:
            raise HubError(404, "Not Found", text=True)
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": f'"{source.key.hex()}"',
        }
        disposition = request.query.get("response-content-disposition")
        if disposition:
            headers["Content-Disposition"] = _header_text(disposition)
        return await self._send_file(request, headers, RepoFile(segs[2], source))


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _decode(segments: list[str]) -> str:
    return "/".join(unquote(s) for s in segments)


def _page_size(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError:
        raise BadRequestError(f'"limit" must be an integer, got "{raw}"') from None
    if not 1 <= size <= MAX_LIMIT:
        raise BadRequestError(f'"limit" must be between 1 and {MAX_LIMIT}')
    return size


def _tree_cursor(raw: str | None) -> int:
    try:
        offset = json.loads(base64.b64decode(raw or "", validate=True))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
    except (ValueError, KeyError, TypeError):
        raise BadRequestError("Invalid cursor") from None
    return offset


def _disposition(name: str) -> str:
    fallback = _header_text(name).replace('"', "")
    return f"inline; filename*=UTF-8''{quote(name, safe='')}; filename=\"{fallback}\";"


def _header_text(text: str) -> str:
    return "".join(c if " " <= c < "\x7f" else "_" for c in text)
