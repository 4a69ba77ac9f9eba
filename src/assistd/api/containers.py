"""/v1/containers and /v1/containers/{id}/files: code_interpreter containers (docs/containers.md)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from assistd.api.deps import json_response, parse_body, parse_query, path_param, project_id, reject_nul, services
from assistd.api.multipart import read_form
from assistd.api.routing import Endpoint, Router
from assistd.errors import InvalidRequest
from assistd.protocol.common import Deleted, ListPage, ListParams
from assistd.protocol.containers import (
    Container,
    ContainerCreate,
    ContainerFile,
    ContainerFileCreate,
    ContainerListParams,
)

UPLOAD_SCHEMA = {
    "type": "object",
    "properties": {"file": {"type": "string", "format": "binary"}, "file_id": {"type": "string"}},
}


def _container(request: Request) -> str:
    return path_param(request, "container_id")


async def create(request: Request) -> Response:
    body = await parse_body(request, ContainerCreate)
    return json_response(await services(request).containers.create(project_id(request), body))


async def list_(request: Request) -> Response:
    params = parse_query(request, ContainerListParams)
    return json_response(await services(request).containers.list(project_id(request), params, params.name))


async def retrieve(request: Request) -> Response:
    return json_response(await services(request).containers.get(project_id(request), _container(request)))


async def delete(request: Request) -> Response:
    return json_response(await services(request).containers.delete(project_id(request), _container(request)))


async def create_file(request: Request) -> Response:
    """Multipart with a `file` part (an upload), or JSON / multipart with `file_id` (a copy of a File)."""
    svc = services(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        body = await parse_body(request, ContainerFileCreate)
        return json_response(await svc.containers.add_file_id(project_id(request), _container(request), body.file_id))
    form = await read_form(request, svc.blobs, svc.settings.max_upload_bytes)
    try:
        for name in [*form.fields, *form.files]:
            if name not in ("file", "file_id"):
                raise InvalidRequest(
                    f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter"
                )
        upload = form.files.get("file")
        file_id = form.fields.get("file_id")
        if (upload is None) == (file_id is None):
            raise InvalidRequest("Provide exactly one of 'file' (an upload) or 'file_id'.", param="file")
        if upload is None:
            assert file_id is not None
            return json_response(await svc.containers.add_file_id(project_id(request), _container(request), file_id))
        reject_nul(upload.filename, "file")
        created = await svc.containers.add_upload(
            project_id(request),
            _container(request),
            filename=upload.filename,
            blob_key=upload.blob_key,
            size=upload.size,
        )
    except BaseException:
        for uploaded in form.files.values():
            await svc.blobs.delete(uploaded.blob_key)
        raise
    return json_response(created)


async def list_files(request: Request) -> Response:
    params = parse_query(request, ListParams)
    page = await services(request).containers.list_files(project_id(request), _container(request), params)
    return json_response(page)


async def retrieve_file(request: Request) -> Response:
    file_id = path_param(request, "file_id")
    return json_response(await services(request).containers.get_file(project_id(request), _container(request), file_id))


async def delete_file(request: Request) -> Response:
    file_id = path_param(request, "file_id")
    removed = await services(request).containers.delete_file(project_id(request), _container(request), file_id)
    return json_response(removed)


async def file_content(request: Request) -> Response:
    file_id = path_param(request, "file_id")
    file, chunks = await services(request).containers.read(project_id(request), _container(request), file_id)
    disposition = f"attachment; filename*=UTF-8''{quote(file.path.rsplit('/', 1)[-1])}"
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={"content-length": str(file.bytes), "content-disposition": disposition},
    )


def register(router: Router) -> None:
    tag = "Containers"
    one = "/containers/{container_id}"
    files = one + "/files"
    file = files + "/{file_id}"
    router.add(Endpoint("POST", "/containers", create, "Create a container", Container, body=ContainerCreate, tag=tag))
    router.add(
        Endpoint(
            "GET", "/containers", list_, "List containers", ListPage[Container], query=ContainerListParams, tag=tag
        )
    )
    router.add(Endpoint("GET", one, retrieve, "Retrieve a container", Container, tag=tag))
    router.add(Endpoint("DELETE", one, delete, "Delete a container, its kernel and its files", Deleted, tag=tag))
    router.add(
        Endpoint(
            "POST",
            files,
            create_file,
            "Add a file to a container (an upload, or a copy of a File)",
            ContainerFile,
            body=ContainerFileCreate,
            multipart=UPLOAD_SCHEMA,
            tag=tag,
        )
    )
    router.add(
        Endpoint(
            "GET", files, list_files, "List a container's files", ListPage[ContainerFile], query=ListParams, tag=tag
        )
    )
    router.add(Endpoint("GET", file, retrieve_file, "Retrieve a container file", ContainerFile, tag=tag))
    router.add(Endpoint("DELETE", file, delete_file, "Delete a container file", Deleted, tag=tag))
    router.add(Endpoint("GET", file + "/content", file_content, "Download a container file's bytes", "binary", tag=tag))
