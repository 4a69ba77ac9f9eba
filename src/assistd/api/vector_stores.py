from __future__ import annotations

from pydantic import ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from assistd.api.deps import json_response, parse_body, parse_query, path_param, project_id, services
from assistd.api.routing import Endpoint, Router
from assistd.protocol.common import Deleted, ListPage, ListParams
from assistd.protocol.vector_stores import (
    FileBatch,
    FileBatchCreate,
    FileContentPage,
    FileContentPart,
    SearchResultsPage,
    VectorStore,
    VectorStoreCreate,
    VectorStoreFile,
    VectorStoreFileCreate,
    VectorStoreFileUpdate,
    VectorStoreSearch,
    VectorStoreUpdate,
)


class FileListParams(ListParams):
    model_config = ConfigDict(extra="ignore")

    filter: str | None = None


def _store(request: Request) -> str:
    return path_param(request, "vector_store_id")


async def create(request: Request) -> Response:
    body = await parse_body(request, VectorStoreCreate)
    return json_response(await services(request).vector_stores.create(project_id(request), body))


async def list_(request: Request) -> Response:
    params = parse_query(request, ListParams)
    return json_response(await services(request).vector_stores.list(project_id(request), params))


async def retrieve(request: Request) -> Response:
    return json_response(await services(request).vector_stores.get(project_id(request), _store(request)))


async def modify(request: Request) -> Response:
    body = await parse_body(request, VectorStoreUpdate)
    return json_response(await services(request).vector_stores.update(project_id(request), _store(request), body))


async def delete(request: Request) -> Response:
    return json_response(await services(request).vector_stores.delete(project_id(request), _store(request)))


async def add_file(request: Request) -> Response:
    body = await parse_body(request, VectorStoreFileCreate)
    return json_response(await services(request).vector_stores.add_file(project_id(request), _store(request), body))


async def list_files(request: Request) -> Response:
    params = parse_query(request, FileListParams)
    page = await services(request).vector_stores.list_files(project_id(request), _store(request), params, params.filter)
    return json_response(page)


async def retrieve_file(request: Request) -> Response:
    file_id = path_param(request, "file_id")
    found = await services(request).vector_stores.get_file(project_id(request), _store(request), file_id)
    return json_response(found, headers=_poll_after(request))


def _poll_after(request: Request) -> dict[str, str]:
    """The SDK's upload_and_poll / create_and_poll read their interval from this header (an integer)."""
    return {"openai-poll-after-ms": str(services(request).settings.poll_after_ms)}


async def update_file(request: Request) -> Response:
    file_id = path_param(request, "file_id")
    body = await parse_body(request, VectorStoreFileUpdate)
    updated = await services(request).vector_stores.update_file(project_id(request), _store(request), file_id, body)
    return json_response(updated)


async def file_content(request: Request) -> Response:
    file_id = path_param(request, "file_id")
    texts = await services(request).vector_stores.file_content(project_id(request), _store(request), file_id)
    return json_response(FileContentPage(data=[FileContentPart(text=text) for text in texts]))


async def remove_file(request: Request) -> Response:
    file_id = path_param(request, "file_id")
    removed = await services(request).vector_stores.remove_file(project_id(request), _store(request), file_id)
    return json_response(removed)


async def create_batch(request: Request) -> Response:
    body = await parse_body(request, FileBatchCreate)
    batch = await services(request).vector_stores.create_batch(project_id(request), _store(request), body)
    return json_response(batch)


async def retrieve_batch(request: Request) -> Response:
    batch_id = path_param(request, "batch_id")
    batch = await services(request).vector_stores.get_batch(project_id(request), _store(request), batch_id)
    return json_response(batch, headers=_poll_after(request))


async def cancel_batch(request: Request) -> Response:
    batch_id = path_param(request, "batch_id")
    batch = await services(request).vector_stores.cancel_batch(project_id(request), _store(request), batch_id)
    return json_response(batch)


async def list_batch_files(request: Request) -> Response:
    batch_id = path_param(request, "batch_id")
    params = parse_query(request, FileListParams)
    page = await services(request).vector_stores.list_batch_files(
        project_id(request), _store(request), batch_id, params, params.filter
    )
    return json_response(page)


async def search(request: Request) -> Response:
    body = await parse_body(request, VectorStoreSearch)
    return json_response(await services(request).vector_stores.search(project_id(request), _store(request), body))


def register(router: Router) -> None:
    tag = "Vector stores"
    root = "/vector_stores"
    one = root + "/{vector_store_id}"
    files = one + "/files"
    batch = one + "/file_batches/{batch_id}"
    add = router.add
    add(
        Endpoint(
            "POST", "/vector_stores", create, "Create a vector store", VectorStore, body=VectorStoreCreate, tag=tag
        )
    )
    add(
        Endpoint("GET", "/vector_stores", list_, "List vector stores", ListPage[VectorStore], query=ListParams, tag=tag)
    )
    add(Endpoint("GET", one, retrieve, "Retrieve a vector store", VectorStore, tag=tag))
    add(Endpoint("POST", one, modify, "Modify a vector store", VectorStore, body=VectorStoreUpdate, tag=tag))
    add(Endpoint("DELETE", one, delete, "Delete a vector store", Deleted, tag=tag))
    add(
        Endpoint(
            "POST",
            files,
            add_file,
            "Add a file to a vector store",
            VectorStoreFile,
            body=VectorStoreFileCreate,
            tag=tag,
        )
    )
    add(
        Endpoint(
            "GET",
            files,
            list_files,
            "List a vector store's files",
            ListPage[VectorStoreFile],
            query=FileListParams,
            tag=tag,
        )
    )
    add(Endpoint("GET", files + "/{file_id}", retrieve_file, "Retrieve a vector store file", VectorStoreFile, tag=tag))
    add(
        Endpoint(
            "POST",
            files + "/{file_id}",
            update_file,
            "Update a vector store file's attributes",
            VectorStoreFile,
            body=VectorStoreFileUpdate,
            tag=tag,
        )
    )
    add(
        Endpoint(
            "GET",
            files + "/{file_id}/content",
            file_content,
            "A vector store file's parsed content",
            FileContentPage,
            tag=tag,
        )
    )
    add(Endpoint("DELETE", files + "/{file_id}", remove_file, "Remove a file from a vector store", Deleted, tag=tag))
    add(
        Endpoint(
            "POST", one + "/file_batches", create_batch, "Create a file batch", FileBatch, body=FileBatchCreate, tag=tag
        )
    )
    add(Endpoint("GET", batch, retrieve_batch, "Retrieve a file batch", FileBatch, tag=tag))
    add(Endpoint("POST", batch + "/cancel", cancel_batch, "Cancel a file batch", FileBatch, tag=tag))
    add(
        Endpoint(
            "GET",
            batch + "/files",
            list_batch_files,
            "List a file batch's files",
            ListPage[VectorStoreFile],
            query=FileListParams,
            tag=tag,
        )
    )
    add(
        Endpoint(
            "POST",
            one + "/search",
            search,
            "Search a vector store",
            SearchResultsPage,
            body=VectorStoreSearch,
            tag=tag,
        )
    )
