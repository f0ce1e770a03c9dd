"""A minimal RESP client: one command on a fresh plain-TCP connection to Redis, without redis-py.

Used on the start-up path (readiness pings, the server version), where importing redis-py costs more
than redis-server takes to listen.
"""
from __future__ import annotations

import asyncio


class RedisReplyError(Exception):
    """Redis answered with an error (the text after the "-")."""


async def raw_command(connect_kwargs: dict, *command: str, timeout: float = 2.0):
    """AUTH (when there is a password), then `command`, on a fresh plain-TCP connection. The reply:
    text (simple, bulk and integer replies), a list (arrays), None (nil). No TLS.

    Cheaper than importing redis-py on the start-up path, where every CPU millisecond delays the apps.
    """
    host, port = connect_kwargs["host"], connect_kwargs["port"]
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        password, username = connect_kwargs.get("password"), connect_kwargs.get("username")
        commands = []
        if password:
            commands.append(["AUTH", username, password] if username else ["AUTH", password])
        commands.append(list(command))
        writer.write(b"".join(encode_command(c) for c in commands))
        await writer.drain()
        reply = ""
        for _ in commands:
            reply = await asyncio.wait_for(read_reply(reader), timeout)
        return reply
    finally:
        writer.close()


async def read_reply(reader: asyncio.StreamReader):
    """One RESP reply from `reader`; an error reply raises RedisReplyError."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode(errors="replace")
    if kind == b"-":
        raise RedisReplyError(rest.decode(errors="replace"))
    if kind == b"$":
        length = int(rest)
        if length < 0:
            return None
        data = await reader.readexactly(length + 2)
        return data[:-2].decode(errors="replace")
    if kind == b":":
        return rest.decode()
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [await read_reply(reader) for _ in range(count)]
    raise ValueError(f"not a Redis reply: {line[:40]!r}")


def encode_command(args: list[str]) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def redis_version(kwargs: dict) -> str | None:
    """`redis_version` from INFO server; None if Redis does not answer. Raw RESP, so no redis-py import
    while the apps start; redis-py's asyncio client only for TLS, which the raw client does not speak."""
    try:
        if kwargs.get("ssl"):
            import redis.asyncio as aioredis

            client = aioredis.Redis(socket_timeout=2, **kwargs)
            try:
                return (await client.info("server")).get("redis_version")
            finally:
                await client.aclose()
        info = await raw_command(kwargs, "INFO", "server")
        return next((line.split(":", 1)[1].strip() for line in info.splitlines()
                     if line.startswith("redis_version:")), None)
    except Exception:  # only shown in the header and status: a Redis that does not answer says so elsewhere
        return None
