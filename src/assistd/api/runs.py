from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from assistd.adapters.stream import AssistantsStream, run_opened, run_resumed
from assistd.api.deps import json_response, parse_body, parse_query, path_param, project_id, services
from assistd.api.routing import Endpoint, Router
from assistd.api.streaming import QueueSink, event_stream
from assistd.protocol.common import ListPage, ListParams
from assistd.protocol.events import StreamEvent
from assistd.protocol.runs import Run, RunCreate, RunStep, RunUpdate, SubmitToolOutputs, ThreadAndRunCreate
from assistd.services.runs import check_include


class StepListParams(ListParams):
    model_config = ConfigDict(extra="ignore")

    include: str | None = None


class IncludeParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include: str | None = None


def _include(request: Request) -> list[str]:
    values = request.query_params.getlist("include[]") + request.query_params.getlist("include")
    check_include(values)
    return values


def _ids(request: Request) -> tuple[str, str]:
    return path_param(request, "thread_id"), path_param(request, "run_id")


async def create(request: Request) -> Response:
    thread_id = path_param(request, "thread_id")
    content = bool(_include(request))  # file_search result content in the streamed steps
    body = await parse_body(request, RunCreate)
    svc = services(request)
    if not body.stream:
        return json_response(await svc.runs.create(project_id(request), thread_id, body))
    run = await svc.runs.create(project_id(request), thread_id, body, owner=svc.worker.owner)
    return _stream(request, run.id, run_opened(run), include_content=content)


def _stream(request: Request, run_id: str, prelude: list[StreamEvent], *, include_content: bool = False) -> Response:
    """Execute the run here, in its own task, and stream its events (DESIGN.md "Runs")."""
    svc = services(request)
    sink = QueueSink(include_content)
    svc.worker.spawn(run_id, AssistantsStream(sink))
    return event_stream(sink, prelude, svc.settings.stream_keepalive_seconds)


async def create_thread_and_run(request: Request) -> Response:
    body = await parse_body(request, ThreadAndRunCreate)
    svc = services(request)
    if not body.stream:
        _, run = await svc.runs.create_thread_and_run(project_id(request), body)
        return json_response(run)
    thread, run = await svc.runs.create_thread_and_run(project_id(request), body, owner=svc.worker.owner)
    return _stream(request, run.id, run_opened(run, thread))


async def list_(request: Request) -> Response:
    params = parse_query(request, ListParams)
    return json_response(
        await services(request).runs.list(project_id(request), path_param(request, "thread_id"), params)
    )


async def retrieve(request: Request) -> Response:
    thread_id, run_id = _ids(request)
    svc = services(request)
    body = await svc.runs.get_json(project_id(request), thread_id, run_id)
    # The SDK's pollers read this once, with int(): it must be an integer string.
    headers = {"openai-poll-after-ms": str(svc.settings.poll_after_ms)}
    return Response(body, media_type="application/json", headers=headers)


async def modify(request: Request) -> Response:
    thread_id, run_id = _ids(request)
    body = await parse_body(request, RunUpdate)
    return json_response(await services(request).runs.update(project_id(request), thread_id, run_id, body))


async def cancel(request: Request) -> Response:
    thread_id, run_id = _ids(request)
    return json_response(await services(request).runs.cancel(project_id(request), thread_id, run_id))


async def submit_tool_outputs(request: Request) -> Response:
    thread_id, run_id = _ids(request)
    body = await parse_body(request, SubmitToolOutputs)
    svc = services(request)
    owner = svc.worker.owner if body.stream else None
    run, step = await svc.runs.submit_tool_outputs(project_id(request), thread_id, run_id, body, owner=owner)
    if not body.stream:
        return json_response(run)
    return _stream(request, run.id, run_resumed(run, step))


async def list_steps(request: Request) -> Response:
    thread_id, run_id = _ids(request)
    content = bool(_include(request))  # the only value include[] takes: file_search result content
    params = parse_query(request, StepListParams)
    page = await services(request).runs.list_steps(
        project_id(request), thread_id, run_id, params, include_content=content
    )
    return json_response(page)


async def retrieve_step(request: Request) -> Response:
    thread_id, run_id = _ids(request)
    content = bool(_include(request))
    step = await services(request).runs.get_step(
        project_id(request), thread_id, run_id, path_param(request, "step_id"), include_content=content
    )
    return json_response(step)


def register(router: Router) -> None:
    tag = "Runs"
    runs = "/threads/{thread_id}/runs"
    one = runs + "/{run_id}"
    router.add(Endpoint("POST", runs, create, "Create a run", Run, body=RunCreate, query=IncludeParams, tag=tag))
    router.add(
        Endpoint(
            "POST",
            "/threads/runs",
            create_thread_and_run,
            "Create a thread and run it",
            Run,
            body=ThreadAndRunCreate,
            tag=tag,
        )
    )
    router.add(Endpoint("GET", runs, list_, "List runs", ListPage[Run], query=ListParams, tag=tag))
    router.add(Endpoint("GET", one, retrieve, "Retrieve a run", Run, tag=tag))
    router.add(Endpoint("POST", one, modify, "Modify a run", Run, body=RunUpdate, tag=tag))
    router.add(Endpoint("POST", one + "/cancel", cancel, "Cancel a run", Run, tag=tag))
    router.add(
        Endpoint(
            "POST",
            one + "/submit_tool_outputs",
            submit_tool_outputs,
            "Submit tool outputs",
            Run,
            body=SubmitToolOutputs,
            tag=tag,
        )
    )
    router.add(
        Endpoint("GET", one + "/steps", list_steps, "List run steps", ListPage[RunStep], query=StepListParams, tag=tag)
    )
    router.add(
        Endpoint(
            "GET", one + "/steps/{step_id}", retrieve_step, "Retrieve a run step", RunStep, query=IncludeParams, tag=tag
        )
    )
