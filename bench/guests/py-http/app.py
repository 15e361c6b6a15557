"""A WASI 0.2 HTTP handler in Python (componentize-py): answers each request with its method
and path, and the sum of a small computation, as a JSON document."""

import json

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        body = json.dumps({"hello": "from Python", "path": path,
                           "sum": sum(i * i for i in range(100))}).encode() + b"\n"
        response = OutgoingResponse(Fields.from_list([("content-type", b"application/json")]))
        response.set_status_code(200)
        outgoing = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with outgoing.write() as stream:
            stream.blocking_write_and_flush(body)
        OutgoingBody.finish(outgoing, None)
