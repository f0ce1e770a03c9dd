"""A queued message decoded for display: reprs only, never the live objects, never unpickled."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .layout import BINARY_PAYLOAD, decode_body, is_json


@dataclass
class MessageInfo:
    """One message, decoded for display (reprs only: never the live objects)."""

    task: str | None
    id: str | None
    args: str
    kwargs: str
    eta: str | None
    priority: int | None
    retries: int | None
    queue: str
    state: Literal["ready", "reserved"]
    raw_content_type: str


def message_info(payload: Any, queue: str, state: str) -> MessageInfo:
    if not isinstance(payload, dict):
        return MessageInfo(None, None, BINARY_PAYLOAD, "", None, None, None, queue, state, "")
    ctype = str(payload.get("content-type") or "")
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict):
        headers = {}
    props = payload.get("properties") or {}
    if not isinstance(props, dict):
        props = {}
    priority = props.get("priority")
    priority = priority if isinstance(priority, int) else None

    if "task" in headers:  # protocol 2
        task = headers.get("task")
        task_id = headers.get("id")
        eta = headers.get("eta")
        retries = headers.get("retries")
        args_repr = headers.get("argsrepr")
        kwargs_repr = headers.get("kwargsrepr")
        if not is_json(ctype):
            # Not JSON (pickle, msgpack, yaml...): the body is never decoded, so show no args.
            args_repr, kwargs_repr = BINARY_PAYLOAD, ""
        elif args_repr is None or kwargs_repr is None:
            body, ok = decode_body(payload)
            if not ok:
                args_repr = args_repr if args_repr is not None else BINARY_PAYLOAD
                kwargs_repr = kwargs_repr if kwargs_repr is not None else ""
            else:
                b_args, b_kwargs = (), {}
                if isinstance(body, list) and len(body) >= 2:
                    b_args, b_kwargs = body[0], body[1]
                if args_repr is None:
                    args_repr = repr(tuple(b_args) if isinstance(b_args, list) else b_args)
                if kwargs_repr is None:
                    kwargs_repr = repr(b_kwargs)
    else:  # protocol 1: everything is in the body
        body, ok = decode_body(payload)
        if not ok or not isinstance(body, dict):
            return MessageInfo(
                task=headers.get("task") if isinstance(headers.get("task"), str) else None,
                id=props.get("correlation_id") if isinstance(props.get("correlation_id"), str) else None,
                args=BINARY_PAYLOAD,
                kwargs="",
                eta=None,
                priority=priority,
                retries=None,
                queue=queue,
                state=state,  # type: ignore[arg-type]
                raw_content_type=ctype,
            )
        task = body.get("task")
        task_id = body.get("id")
        eta = body.get("eta")
        retries = body.get("retries")
        b_args = body.get("args", ())
        args_repr = repr(tuple(b_args) if isinstance(b_args, list) else b_args)
        kwargs_repr = repr(body.get("kwargs", {}))

    return MessageInfo(
        task=str(task) if task is not None else None,
        id=str(task_id) if task_id is not None else None,
        args=str(args_repr),
        kwargs=str(kwargs_repr),
        eta=str(eta) if eta is not None else None,
        priority=priority,
        retries=retries if isinstance(retries, int) else None,
        queue=queue,
        state=state,  # type: ignore[arg-type]
        raw_content_type=ctype,
    )

