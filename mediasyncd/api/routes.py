"""Every route of the status server, once: the server is wired from this table and the OpenAPI 3 document
(`GET /api/v1/openapi.json`) is made from it, so the two cannot disagree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mediasyncd import __version__
from mediasyncd.api import handlers as h
from mediasyncd.config_workflow import STAGE_NAMES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = dict[str, Any]

ERROR: Schema = {
    "type": "object",
    "required": ["error", "field"],
    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
}
TIME: Schema = {"type": ["string", "null"], "description": "UTC, ISO 8601"}
JOB: Schema = {
    "type": "object",
    "required": [
        "id",
        "kind",
        "state",
        "created_at",
        "started_at",
        "finished_at",
        "progress",
        "result",
        "error",
    ],
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["sync", "purge", "workflow"]},
        "state": {"enum": ["queued", "running", "done", "failed", "cancelled"]},
        "created_at": TIME,
        "started_at": TIME,
        "finished_at": TIME,
        "progress": {"type": "object"},
        "result": {"type": "object"},
        "error": {"type": ["string", "null"]},
    },
}
REMOTE: Schema = {
    "type": "object",
    "required": ["name", "state", "paused", "held", "config"],
    "properties": {
        "name": {"type": "string"},
        "state": {"enum": ["connecting", "connected", "backoff", "error"]},
        "paused": {"type": ["string", "null"], "description": "why nothing is taken now, if so"},
        "held": {"type": "boolean", "description": "paused through the API or `mediasyncd pause`"},
        "config": {"type": "object", "description": "the remote's settings (no secrets)"},
    },
}
EVENT: Schema = {
    "type": "object",
    "required": ["id", "type", "time", "remote", "path", "sync_id", "data"],
    "properties": {
        "id": {"type": "integer"},
        "type": {"type": "string"},
        "time": {"type": "string"},
        "remote": {"type": ["string", "null"]},
        "path": {"type": ["string", "null"]},
        "sync_id": {"type": ["string", "null"]},
        "data": {"type": "object"},
    },
}
FILE: Schema = {
    "type": "object",
    "required": ["id", "remote", "path", "library_path", "size", "sha256", "landed_at", "state"],
    "properties": {
        "id": {"type": "integer"},
        "remote": {"type": "string"},
        "path": {"type": "string", "description": "on the remote, under its root"},
        "library_path": {"type": "string", "description": "in the library"},
        "size": {"type": "integer"},
        "sha256": {"type": "string"},
        "landed_at": TIME,
        "state": {"type": "string"},
        "generator": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "prompt": {"type": ["string", "null"]},
        "thumbnail": {"type": "boolean"},
        "metadata": {"type": ["object", "null"], "description": "the full parse (GET /files/{id} only)"},
    },
}
HOLD: Schema = {
    "type": "object",
    "required": ["held"],
    "properties": {"remote": {"type": ["string", "null"]}, "held": {"type": "boolean"}},
}


def obj(**properties: Schema) -> Schema:
    return {"type": "object", "required": list(properties), "properties": properties}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" or "query"
    schema: Schema
    description: str = ""

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.where == "path",
            "schema": self.schema,
            "description": self.description,
        }


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    responses: dict[int, tuple[str, Schema]]
    params: Sequence[Param] = ()
    body: Schema | None = None
    tags: Sequence[str] = field(default=())


NAME = Param("name", "path", {"type": "string"}, "the remote's name")
FILE_ID = Param("id", "path", {"type": "integer", "minimum": 1}, "the file's id (as `files` gives it)")
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
BINARY: Schema = {"type": "string", "format": "binary"}
JOB_ID = Param("id", "path", {"type": "string"}, "the job's id")
NO_REMOTE = (404, ("no such remote", ERROR))
NO_FILE = ("no such file in the library (or no thumbnail)", ERROR)
BAD = (400, ("a parameter or field is wrong (`field` names it)", ERROR))

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/v1/remotes",
        h.list_remotes,
        "every remote: what /status says of it, and its config",
        {200: ("the remotes", obj(remotes={"type": "array", "items": REMOTE}))},
    ),
    Route(
        "GET",
        "/api/v1/remotes/{name}",
        h.get_remote,
        "one remote",
        {200: ("the remote", obj(remote=REMOTE)), 404: NO_REMOTE[1]},
        [NAME],
    ),
    Route(
        "POST",
        "/api/v1/remotes/{name}/sync",
        h.sync_remote,
        "a pass of this remote now",
        {202: ("the job, done when that pass has been made", obj(job=JOB)), 404: NO_REMOTE[1]},
        [NAME],
        body={"type": "object"},
    ),
    Route(
        "POST",
        "/api/v1/remotes/{name}/pause",
        h.pause_remote,
        "take no new files from this remote (transfers in flight finish)",
        {200: ("held", HOLD), 404: NO_REMOTE[1]},
        [NAME],
        body={"type": "object"},
    ),
    Route(
        "POST",
        "/api/v1/remotes/{name}/resume",
        h.resume_remote,
        "take new files again",
        {200: ("released", HOLD), 404: NO_REMOTE[1]},
        [NAME],
        body={"type": "object"},
    ),
    Route(
        "POST",
        "/api/v1/purge",
        h.purge,
        "a purge now (a dry run unless dry_run is false)",
        {
            202: ("the job; its result holds the plan or what was done", obj(job=JOB)),
            400: BAD[1],
            404: NO_REMOTE[1],
        },
        body={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "remote": {"type": ["string", "null"]},
                "dry_run": {"type": "boolean"},
                "include_deleted_locally": {"type": "boolean"},
                "local_only": {"type": "boolean"},
            },
        },
    ),
    Route(
        "POST",
        "/api/v1/purge/pause",
        h.pause_purge,
        "hold scheduled purges",
        {200: ("held", HOLD)},
        body={"type": "object"},
    ),
    Route(
        "POST",
        "/api/v1/purge/resume",
        h.resume_purge,
        "let scheduled purges run again",
        {200: ("released", HOLD)},
        body={"type": "object"},
    ),
    Route(
        "POST",
        "/api/v1/workflow/run",
        h.workflow_run,
        "a pass of the workflow stages now (`mediasyncd workflow run`)",
        {
            202: (
                "the job; its result holds the counts per stage, paused stages and planned steps",
                obj(job=JOB),
            ),
            400: BAD[1],
        },
        body={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "from": {"enum": [*STAGE_NAMES, None]},
                "to": {"enum": [*STAGE_NAMES, None]},
                "dry_run": {"type": "boolean"},
                "paths": {"type": "array", "items": {"type": "string", "pattern": "^/"}},
            },
        },
    ),
    Route(
        "GET",
        "/api/v1/jobs",
        h.list_jobs,
        "the jobs, newest first",
        {200: ("the jobs", obj(jobs={"type": "array", "items": JOB}))},
    ),
    Route(
        "GET",
        "/api/v1/jobs/{id}",
        h.get_job,
        "one job",
        {200: ("the job", obj(job=JOB)), 404: ("no such job", ERROR)},
        [JOB_ID],
    ),
    Route(
        "POST",
        "/api/v1/jobs/{id}/cancel",
        h.cancel_job,
        "cancel a job (a purge stops between batches)",
        {200: ("the job as it ended", obj(job=JOB)), 404: ("no such job", ERROR)},
        [JOB_ID],
        body={"type": "object"},
    ),
    Route(
        "GET",
        "/api/v1/events",
        h.events,
        "long poll on the event log: events after `since`",
        {
            200: (
                "the events (empty when `timeout` passed first) and the id to ask after next",
                obj(events={"type": "array", "items": EVENT}, last_id={"type": "integer"}),
            ),
            400: BAD[1],
        },
        [
            Param(
                "since", "query", {"type": "integer", "minimum": 0}, "only events after this id (exclusive)"
            ),
            Param("types", "query", {"type": "string"}, "comma-separated event types"),
            Param(
                "timeout",
                "query",
                {"type": "number", "minimum": 0, "maximum": h.LONG_POLL_MAX},
                "seconds to wait for one",
            ),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": h.EVENTS_LIMIT}),
        ],
    ),
    Route(
        "GET",
        "/api/v1/files",
        h.list_files,
        "the library's files, newest first (q: search like `mediasyncd search`)",
        {
            200: (
                "a page of files",
                obj(files={"type": "array", "items": FILE}, next_cursor=NULLABLE_STRING),
            ),
            400: BAD[1],
        },
        [
            Param(
                "q",
                "query",
                {"type": "string"},
                'the search language of `mediasyncd search`: words, "phrases", -negation, OR, and filters'
                " such as model:juggernaut lora:detail seed:1234 steps:>30 generator:comfyui after:2026-11-01",
            ),
            Param("remote", "query", {"type": "string"}),
            Param("generator", "query", {"type": "string"}),
            Param("model", "query", {"type": "string"}),
            Param("since", "query", {"type": "number", "minimum": 0}, "landed at or after (epoch seconds)"),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": h.FILES_MAX}),
            Param(
                "cursor",
                "query",
                {"type": "string", "pattern": r"^[0-9]{1,17}(\.[0-9]{1,9})?:[0-9]{1,18}$"},
                "next_cursor of the page before",
            ),
        ],
    ),
    Route(
        "GET",
        "/api/v1/files/{id}",
        h.get_file,
        "one file, with its generation metadata",
        {200: ("the file", obj(file=FILE)), 400: BAD[1], 404: NO_FILE},
        [FILE_ID],
    ),
    Route(
        "GET",
        "/api/v1/files/{id}/thumbnail",
        h.file_thumbnail,
        "the file's thumbnail (WebP)",
        {200: ("the image", BINARY), 400: BAD[1], 404: NO_FILE},
        [FILE_ID],
    ),
    Route(
        "GET",
        "/api/v1/files/{id}/content",
        h.file_content,
        "the library file (HTTP ranges work)",
        {200: ("the file's bytes", BINARY), 400: BAD[1], 404: NO_FILE},
        [FILE_ID],
    ),
    Route(
        "GET",
        "/api/v1/ws",
        h.ws,
        "WebSocket of typed messages: status (4/s) and each event after `since`",
        {
            101: ("switching to the WebSocket protocol", {"type": "object"}),
            400: ("not a WebSocket handshake, or a bad `since`", ERROR),
        },
        [
            Param(
                "since",
                "query",
                {"type": "integer", "minimum": -1},
                "events after this id (default: new ones)",
            )
        ],
    ),
    Route(
        "POST",
        "/api/v1/login",
        h.login,
        "trade the token for a session cookie",
        {200: ("the cookie is set", obj(ok={"type": "boolean"})), 400: BAD[1], 401: ("wrong token", ERROR)},
        body=obj(token={"type": "string"}),
    ),
    Route(
        "POST",
        "/api/v1/logout",
        h.logout,
        "end this browser's session",
        {200: ("the session is over", obj(ok={"type": "boolean"}))},
        body={"type": "object"},
    ),
    Route(
        "GET", "/api/v1/openapi.json", h.openapi, "this document", {200: ("OpenAPI 3.1", {"type": "object"})}
    ),
)


# What any route may answer before its handler runs (api.guard), and what any POST may.
COMMON: dict[int, tuple[str, Schema]] = {
    401: ("missing or wrong token (when status_token is set)", ERROR),
    403: ("a Host that is not loopback (on a loopback bind) or a cross-site Origin", ERROR),
}


def posted(route: Route) -> dict[int, tuple[str, Schema]]:
    if route.method != "POST":
        return {}
    return {
        400: ("the body is not a JSON object, or a field is wrong (`field` names it)", ERROR),
        415: ("the body is not JSON (Content-Type: application/json)", ERROR),
        409: ("the daemon cannot do it now (the error says why)", ERROR),
    }


def media_type(schema: Schema) -> str:
    return "*/*" if schema.get("format") == "binary" else "application/json"


def add_routes(app: web.Application, routes: Sequence[Route] = ROUTES) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)


def document(routes: Sequence[Route] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` (pure)."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        operation: dict[str, Any] = {
            "summary": r.summary,
            "operationId": r.handler.__name__,
            "responses": {
                str(code): {"description": text, "content": {media_type(schema): {"schema": schema}}}
                for code, (text, schema) in sorted((COMMON | posted(r) | dict(r.responses)).items())
            },
        }
        if r.params:
            operation["parameters"] = [p.spec() for p in r.params]
        if r.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": r.body}},
            }
        paths.setdefault(r.path, {})[r.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "mediasyncd control API", "version": __version__},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "mediasyncd_session"},
            }
        },
        "security": [{"bearer": []}, {"cookie": []}, {}],
        "paths": paths,
    }
