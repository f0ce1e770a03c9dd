"""The shape of a CELERY_BROKER_URL: what is wrong with one, in words, never quoting a password."""
from __future__ import annotations

from urllib.parse import urlsplit

SHAPE = "redis://:<password>@host:port/db"
_SOCKET_SCHEMES = ("redis+socket", "socket", "unix")
TCP_SCHEMES = ("redis", "rediss", "sentinel")


def broker_url_problems(url: str) -> list[str]:
    """What is wrong with a CELERY_BROKER_URL, in words; [] when kombu's Redis transport can use it.

    Never quotes the URL or any part of it that could be a password.
    """
    if not url.strip():
        return ["is empty"]
    problems = []
    if url != url.strip():
        problems.append("has spaces around it (they become part of the host or the db). Remove them")
    url = url.strip()
    if url[0] in "\"'" or url[-1] in "\"'":
        return problems + ["is wrapped in quote characters that became part of the value. Remove the quotes"]
    parts = [p for p in url.split(";") if p.strip()]
    if len(parts) > 1 and not all(p.strip().lower().startswith("sentinel://") for p in parts):
        return problems + ["joins several URLs with ';', which only sentinel:// lists may do "
                           "(sentinel://:<password>@h1:26379/1;sentinel://:<password>@h2:26379/1)"]
    for i, part in enumerate(parts):
        where = f"part {i + 1} of the sentinel list " if len(parts) > 1 else ""
        problems += [where + p for p in _one_url_problems(part.strip())]
    return problems


def _one_url_problems(url: str) -> list[str]:
    if "://" not in url:
        return [f"has no scheme: it must look like {SHAPE}"]
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme in ("amqp", "pyamqp", "amqps", "librabbitmq"):
        return ["is a RabbitMQ (amqp://) URL, but devstack's broker is Redis: use " + SHAPE]
    if scheme in _SOCKET_SCHEMES:
        return []
    if scheme not in TCP_SCHEMES:
        return [f"has the scheme {scheme[:20]!r}; kombu's Redis transport takes redis://, rediss://, "
                "sentinel:// or redis+socket://"]
    if "," in rest.split("/", 1)[0] and scheme == "sentinel":
        return ["lists sentinels with ',': separate whole URLs with ';' "
                "(sentinel://:<password>@h1:26379/1;sentinel://:<password>@h2:26379/1)"]
    netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    if "@" in tail:
        return ["has a password containing '/', '?' or '#' that is not percent-encoded, so the host, port "
                "and db are read from inside the password. Encode those characters (%2F, %3F, %23), "
                "e.g. with urllib.parse.quote(password, safe='')"]
    problems = []
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" not in userinfo:
        problems.append("has no ':' before the password, so Redis reads it as a user name and sends no "
                        f"password (NOAUTH/WRONGPASS). Write {SHAPE}, with the ':' after '//'")
    host, colon, port = hostport, "", ""
    if hostport.startswith("["):  # IPv6 literal
        end = hostport.find("]")
        host, port = hostport[:end + 1], hostport[end + 2:] if hostport[end + 1:end + 2] == ":" else ""
        colon = ":" if port else ""
    elif ":" in hostport:
        host, colon, port = hostport.rpartition(":")
    if colon and not port.isdigit():
        problems.append(f"has the port {port[:20]!r}, which is not a number (e.g. :6379)")
    elif port and not 1 <= int(port) <= 65535:
        problems.append(f"has the port {port}, outside 1..65535")
    if ":" in host and not host.startswith("["):
        problems.append("has more than one ':' after the '@' (host:port expected)")
    db = urlsplit("x://h" + tail).path.strip()
    if db not in ("", "/"):
        number = db[1:]
        if not number.isdigit():
            problems.append(f"has the database {number[:20]!r}: the path after the port must be the db "
                            "number, an integer such as /1")
        elif int(number) > 15:
            problems.append(f"uses db {int(number)}; a default Redis has 16 databases (0-15), "
                            "so SELECT fails unless `databases` is raised in redis.conf")
    return problems
