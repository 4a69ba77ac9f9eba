from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from assistd.api.deps import json_response, parse_query, path_param, project_id, reject_nul, services
from assistd.api.multipart import Form, read_form
from assistd.api.routing import Endpoint, Router
from assistd.errors import InvalidRequest
from assistd.protocol.common import Deleted, ListPage
from assistd.protocol.files import (
    EXPIRES_MAX_SECONDS,
    EXPIRES_MIN_SECONDS,
    UPLOAD_PURPOSES,
    FileListParams,
    FileObject,
)
from assistd.services.common import now

FORM_FIELDS = {"purpose", "expires_after[anchor]", "expires_after[seconds]"}

UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["file", "purpose"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)},
        "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
        "expires_after[seconds]": {"type": "integer", "minimum": EXPIRES_MIN_SECONDS, "maximum": EXPIRES_MAX_SECONDS},
    },
}


def _upload_fields(form: Form) -> tuple[str, int | None]:
    """Validate the form fields; returns (purpose, expires_at)."""
    for name in [*form.fields, *form.files]:
        if name not in FORM_FIELDS and name != "file":
            raise InvalidRequest(
                f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter"
            )
    if "file" not in form.files:
        raise InvalidRequest("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    reject_nul(form.files["file"].filename, "file")
    purpose = form.fields.get("purpose")
    if purpose is None:
        raise InvalidRequest(
            "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
        )
    if purpose not in UPLOAD_PURPOSES:
        supported = ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES)
        raise InvalidRequest(
            f"Invalid value: '{purpose}'. Supported values are: {supported}.", param="purpose", code="invalid_value"
        )
    anchor = form.fields.get("expires_after[anchor]")
    seconds = form.fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return purpose, None
    if anchor != "created_at":
        raise InvalidRequest(
            "Invalid 'expires_after.anchor': the only supported anchor is 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    if seconds is None or not seconds.strip().isdigit():
        raise InvalidRequest(
            "Invalid 'expires_after.seconds': expected an integer.", param="expires_after.seconds", code="invalid_type"
        )
    value = int(seconds)
    if not EXPIRES_MIN_SECONDS <= value <= EXPIRES_MAX_SECONDS:
        raise InvalidRequest(
            f"Invalid 'expires_after.seconds': expected a value between {EXPIRES_MIN_SECONDS} and "
            f"{EXPIRES_MAX_SECONDS}, but got {value} instead.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return purpose, now() + value


async def upload(request: Request) -> Response:
    svc = services(request)
    form = await read_form(request, svc.blobs, svc.settings.max_upload_bytes)
    try:
        purpose, expires_at = _upload_fields(form)
        upload = form.files["file"]
        created = await svc.files.create(
            project_id(request),
            blob_key=upload.blob_key,
            size=upload.size,
            filename=upload.filename,
            purpose=purpose,
            expires_at=expires_at,
        )
    except BaseException:
        for uploaded in form.files.values():
            await svc.blobs.delete(uploaded.blob_key)
        raise
    return json_response(created)


async def list_(request: Request) -> Response:
    params = parse_query(request, FileListParams)
    return json_response(await services(request).files.list(project_id(request), params))


async def retrieve(request: Request) -> Response:
    return json_response(await services(request).files.get(project_id(request), path_param(request, "file_id")))


async def delete(request: Request) -> Response:
    return json_response(await services(request).files.delete(project_id(request), path_param(request, "file_id")))


async def content(request: Request) -> Response:
    file, chunks = await services(request).files.content(project_id(request), path_param(request, "file_id"))
    disposition = f"attachment; filename*=UTF-8''{quote(file.filename)}"
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={"content-length": str(file.bytes), "content-disposition": disposition},
    )


def register(router: Router) -> None:
    tag = "Files"
    one = "/files/{file_id}"
    router.add(Endpoint("POST", "/files", upload, "Upload a file", FileObject, multipart=UPLOAD_SCHEMA, tag=tag))
    router.add(Endpoint("GET", "/files", list_, "List files", ListPage[FileObject], query=FileListParams, tag=tag))
    router.add(Endpoint("GET", one, retrieve, "Retrieve a file", FileObject, tag=tag))
    router.add(Endpoint("DELETE", one, delete, "Delete a file and its bytes", Deleted, tag=tag))
    router.add(Endpoint("GET", one + "/content", content, "Download a file's bytes", "binary", tag=tag))
