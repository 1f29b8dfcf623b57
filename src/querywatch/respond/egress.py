"""Where webhooks may POST: never to a link-local, unspecified or cloud-metadata address.

A webhook URL is configuration, but it is often pasted from elsewhere, and an agent runs on cloud
hosts where ``http://169.254.169.254/`` hands out credentials to whoever asks. So an address in
169.254.0.0/16 or fe80::/10, an unspecified one (0.0.0.0, ``::``: this host), the few cloud
metadata services outside link-local, and every IPv6 spelling of those IPv4 addresses
(``::ffff:169.254.169.254``, NAT64, 6to4) is refused twice: when the URL is configured (an
address written in the URL, in any numeric form the resolver accepts) and when a request is sent,
on the addresses the name resolves to at that moment, which are the ones connected to. Loopback
and private networks stay allowed: an Alertmanager or a deploy hook on the internal network is
the common case. ``webhook_allow_link_local = true`` lifts the rule.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from typing import Any

from querywatch.errors import ConfigError

ALLOW_SETTING = "webhook_allow_link_local"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this network": 0.0.0.0 reaches this host
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Cloud metadata services that do not sit in link-local space (AWS's IPv6 endpoint, Alibaba
#: Cloud, Azure's WireServer).
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)


class BlockedTarget(OSError):
    """A webhook would reach a refused address. An OSError, so urllib reports it as the reason
    the connection failed; never retried."""


def refused(address: IPAddress) -> str | None:
    """Why a connection to ``address`` is refused, or ``None`` when it may go ahead."""
    if isinstance(address, ipaddress.IPv6Address):
        scope_free = ipaddress.IPv6Address(int(address))
        low32 = ipaddress.IPv4Address(int(scope_free) & 0xFFFFFFFF)
        compatible = int(scope_free) >> 32 == 0 and int(scope_free) > 1  # ::a.b.c.d (deprecated)
        embedded = (
            scope_free.ipv4_mapped
            or scope_free.sixtofour
            or (low32 if scope_free in _NAT64 or compatible else None)
        )
        if embedded is not None:
            return refused(embedded)
        address = scope_free
    if address.is_unspecified or address in _THIS_NETWORK:
        return "an unspecified address (0.0.0.0/8 or ::), which reaches this host"
    if address.is_link_local:
        return "a link-local address, where cloud metadata services answer"
    if address in _METADATA:
        return "a cloud metadata address"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names without DNS: ``169.254.169.254``, ``[::1]``, and the
    numeric forms the C resolver also accepts (``2852039166``, ``0xa9fea9fe``, ``0251.0376…``)."""
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None  # a name: checked when it is resolved, at send time
    return ipaddress.ip_address(str(infos[0][4][0]).split("%")[0]) if infos else None


def check_host(host: str, setting: str, *, allow_link_local: bool) -> None:
    """At configuration time: refuse a URL whose host is a refused address."""
    if allow_link_local:
        return
    address = literal_address(host)
    reason = refused(address) if address is not None else None
    if reason is not None:
        raise ConfigError(
            f"{setting}: {host} is {reason}: refused unless {ALLOW_SETTING} = true "
            f"(QUERYWATCH_{ALLOW_SETTING.upper()}=1)",
            setting=setting,
        )


def _connect_checked(
    address: tuple[str, int],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: tuple[str, int] | None = None,
    *args: Any,
    **kwargs: Any,
) -> socket.socket:
    """``socket.create_connection`` that resolves once, refuses if any address is refused,
    then connects to exactly the addresses it checked (no second lookup to rebind)."""
    host, port = address
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        reason = refused(ip)
        if reason is not None:
            what = str(ip) if host == str(ip) else f"{host} resolves to {ip}, which"
            raise BlockedTarget(f"{what} is {reason}: refused unless {ALLOW_SETTING} = true")
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error if error is not None else OSError(f"{host} resolves to no address")


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_checked


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_checked


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPConnection, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirected POST turns into a GET (and could point anywhere): refuse


def opener(*, allow_link_local: bool = False) -> urllib.request.OpenerDirector:
    """A urllib opener for webhooks: redirects are never followed, and unless
    ``allow_link_local`` every connection is checked after DNS resolution.

    Through an HTTP(S) proxy (``https_proxy``…) the proxy resolves the webhook's name: then the
    connection checked is the one to the proxy, and only an address written in the URL is
    checked for the webhook itself (at configuration time)."""
    if allow_link_local:
        return urllib.request.build_opener(_NoRedirect)
    return urllib.request.build_opener(_NoRedirect, _CheckedHTTPHandler, _CheckedHTTPSHandler)
