"""A request to /api/reply: its body read within its bounds, then checked into the text and
one Decoding. Every problem is a RequestError (a status and one line for the client); a
client that hung up is ClientGone, which needs no answer and no log line."""

from __future__ import annotations

import json
from typing import Protocol, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect, Request

from pipeline.config import ServeLimits
from pipeline.decoding import MAX_NUM, Decoding
from pipeline.errors import UsageError

OPTIONS = ("text", "num", "temperature", "beam")


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The client closed the connection before its body was read."""


class ReplyFields(Protocol):
    """The fields of request_model's ReplyRequest, as parse_reply reads them."""

    text: str
    num: int
    temperature: float
    beam: int


def request_model(limits: ServeLimits) -> type[BaseModel]:
    class ReplyRequest(BaseModel):
        # Strict: "2" is not a number and true is not 1; unknown options are errors, not ignored.
        model_config = ConfigDict(extra="forbid", strict=True)

        text: str = Field(max_length=limits.max_text)
        num: int = Field(1, ge=1, le=MAX_NUM)
        temperature: float = Field(0.0, ge=0.0, le=limits.max_temperature, allow_inf_nan=False)
        beam: int = Field(0, ge=0, le=limits.max_beam)

    return ReplyRequest


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


async def read_json(request: Request, limits: ServeLimits) -> object:
    """The body as JSON: 415 unless application/json, 413 over max_body (by its header or while
    reading, so a chunked body cannot get round it), 400 unless valid UTF-8 JSON."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise RequestError(415, "send the request as application/json")
    too_large = RequestError(413, f"request body too large: at most {limits.max_body} bytes")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limits.max_body):
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limits.max_body:
                raise too_large
    except ClientDisconnect:
        raise ClientGone from None
    try:
        return json.loads(bytes(body).decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, "the body is not valid JSON (UTF-8)") from None
    except RecursionError:  # [[[[...: the decoder's depth limit, not a server fault
        raise RequestError(400, "the body is nested too deeply: send a flat JSON object") from None


def _validation_message(exc: ValidationError, limits: ServeLimits) -> str:
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err.get("loc", ())) or "body"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return f"unknown option {name!r}: the options are {', '.join(OPTIONS)}"
    if kind == "string_too_long":
        return f"text is too long: at most {limits.max_text} characters"
    if kind == "missing":
        return f'{name} is missing: send {{"text": "..."}}'
    msg = err.get("msg", "invalid")
    return f"{name}: {msg[0].lower()}{msg[1:]}"


def parse_reply(obj: object, model: type[BaseModel], limits: ServeLimits, arch: str) -> tuple[str, Decoding]:
    """The text and the Decoding of a request body, checked (422 for what is wrong)."""
    if not isinstance(obj, dict):
        raise RequestError(422, 'the body must be a JSON object like {"text": "..."}')
    try:
        req = cast(ReplyFields, model.model_validate(obj))
    except ValidationError as exc:
        raise RequestError(422, _validation_message(exc, limits)) from None
    if not req.text.strip():
        raise RequestError(422, "text is empty: type something to reply to")
    try:
        decoding = Decoding(num=req.num, temperature=req.temperature, beam=req.beam).validate_for(arch)
    except UsageError as exc:
        # Decoding speaks of command-line flags; over HTTP the same names are JSON fields.
        raise RequestError(422, str(exc).replace("--", "")) from None
    return req.text, decoding
