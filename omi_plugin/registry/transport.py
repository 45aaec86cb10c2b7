"""HTTP to one registry: scheme and TLS policy, kept-alive connections, retries with backoff, redirects.

Knows nothing of OCI: it sends a request (with a body that can be re-opened for a retry), asks the authenticator
for headers, answers one 401 challenge, and retries transient failures — connection errors and resets, 429 and
5xx — with exponential backoff bounded both in attempts and in total time.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

from omi_plugin.registry.errors import RegistryError, TransientError
from omi_plugin.registry.reference import api_host, is_loopback

if TYPE_CHECKING:
    from omi_plugin.registry.auth import Authenticator

# A request body: small bytes, or a callable opening a fresh stream (so a retry can send it again).
Body = Union[bytes, Callable[[], IO[bytes]], None]

USER_AGENT = "omi-registry-client/1"
BLOCK_SIZE = 1 << 20
MAX_REDIRECTS = 5
# 501 (not implemented) and 505 are answers, not hiccups: retrying them cannot help.
_PERMANENT_5XX = {501, 505}
_RETRYABLE_EXCEPTIONS = (ConnectionError, http.client.HTTPException, socket.timeout, TimeoutError, ssl.SSLEOFError)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: at most `attempts` tries and `total_seconds` of waiting per operation."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 10.0
    total_seconds: float = 120.0

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay * 3)
        backoff = min(self.max_delay, self.base_delay * (2 ** attempt))
        # Jitter keeps parallel clients (CI fan-out) from retrying in lock step.
        return backoff * random.uniform(0.5, 1.0)


class Backoff:
    """The retry budget of one operation: counts attempts and the time already spent waiting."""

    def __init__(self, policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy
        self.attempt = 0
        self._sleep = sleep
        self._deadline = time.monotonic() + policy.total_seconds

    def wait(self, retry_after: Optional[float] = None) -> bool:
        """Sleep before the next attempt; False when the budget is spent."""
        self.attempt += 1
        if self.attempt >= self.policy.attempts:
            return False
        pause = self.policy.delay(self.attempt - 1, retry_after)
        if time.monotonic() + pause > self._deadline:
            return False
        self._sleep(pause)
        return True


def is_retryable_status(status: int) -> bool:
    return status == 429 or (500 <= status < 600 and status not in _PERMANENT_5XX)


def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected)):
        return "connection reset by the registry"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed in the middle of a response"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


class Response:
    """Status, headers and (for non-streamed requests) the whole body, which is small: JSON or nothing."""

    def __init__(self, status: int, reason: str, headers: Sequence[Tuple[str, str]], url: str,
                 body: Optional[bytes] = None, raw: Optional[http.client.HTTPResponse] = None,
                 conn: Optional[http.client.HTTPConnection] = None) -> None:
        self.status = status
        self.reason = reason
        self.url = url
        self._headers: Dict[str, str] = {}
        for key, value in headers:
            self._headers.setdefault(key.lower(), value)
        self._body = body
        self._raw = raw
        self._conn = conn

    def header(self, name: str) -> Optional[str]:
        return self._headers.get(name.lower())

    def read(self) -> bytes:
        if self._body is None:
            self._body = self._raw.read() if self._raw is not None else b""
            self.close()
        return self._body

    def chunks(self, size: int = BLOCK_SIZE) -> Iterator[bytes]:
        """Stream the body; raises the transport's exceptions (resets) to the caller, who decides to restart."""
        if self._body is not None:
            yield self._body
            return
        assert self._raw is not None
        while True:
            chunk = self._raw.read(size)
            if not chunk:
                break
            yield chunk

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Transport:
    """Requests to one registry (`host[:port]`), over HTTPS unless the host is loopback or marked insecure."""

    def __init__(self, registry: str, *, insecure: bool = False, timeout: float = 60.0,
                 retry: RetryPolicy = RetryPolicy(), auth: Optional["Authenticator"] = None,
                 sleep: Callable[[float], None] = time.sleep, ca_file: Optional[str] = None) -> None:
        self.registry = registry
        self.insecure = insecure
        self.timeout = timeout
        self.retry = retry
        self.auth = auth
        self.sleep = sleep
        self.netloc = api_host(registry)
        # Loopback speaks plain HTTP; an insecure remote first tries HTTPS without verification, then HTTP.
        self.scheme = "http" if is_loopback(registry) else "https"
        self._tls = ssl.create_default_context(cafile=ca_file)
        if insecure:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self._pool: Dict[Tuple[str, str], http.client.HTTPConnection] = {}

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def plain_http_allowed(self, netloc: str) -> bool:
        return self.insecure or is_loopback(netloc)

    def close(self) -> None:
        for conn in self._pool.values():
            conn.close()
        self._pool.clear()

    # -- one attempt ------------------------------------------------------------------------------------------

    def _connection(self, scheme: str, netloc: str, fresh: bool) -> http.client.HTTPConnection:
        key = (scheme, netloc)
        if not fresh and key in self._pool:
            return self._pool[key]
        if scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                netloc, timeout=self.timeout, context=self._tls, blocksize=BLOCK_SIZE)
        elif self.plain_http_allowed(netloc):
            conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=BLOCK_SIZE)
        else:
            raise RegistryError(netloc, "refusing plain HTTP to a non-loopback host",
                                "use HTTPS, or mark this registry insecure if you trust the network")
        if not fresh:
            self._pool[key] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._pool.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def _send_once(self, method: str, url: str, headers: Mapping[str, str], body: Body,
                   stream: bool) -> Response:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = self._connection(parts.scheme, parts.netloc, fresh=stream)
        stream_body: Optional[IO[bytes]] = None
        try:
            payload: Union[bytes, IO[bytes], None]
            if callable(body):
                stream_body = body()
                payload = stream_body
            else:
                payload = body
            conn.request(method, target or "/", body=payload, headers=dict(headers))
            raw = conn.getresponse()
            if stream and method != "HEAD" and 200 <= raw.status < 300:
                return Response(raw.status, raw.reason, raw.getheaders(), url, raw=raw, conn=conn)
            data = raw.read()
            response = Response(raw.status, raw.reason, raw.getheaders(), url, body=data)
            if stream:
                conn.close()
            return response
        except BaseException:
            if stream:
                conn.close()
            else:
                self._drop(parts.scheme, parts.netloc)
            raise
        finally:
            if stream_body is not None:
                stream_body.close()

    # -- the public request ------------------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """Registries answer with relative or absolute `Location`s; both resolve against the registry's URL."""
        return urllib.parse.urljoin(self.base_url + "/", path_or_url)

    def request(self, method: str, path_or_url: str, *, headers: Optional[Mapping[str, str]] = None,
                body: Body = None, scopes: Sequence[str] = (), retry: bool = True, stream: bool = False,
                where: str = "", follow_redirects: bool = True) -> Response:
        """Send one request with auth, retries (if `retry`) and redirects (GET/HEAD); return the final response.

        A retryable status that outlasts the budget is returned, not raised, so the caller can name what failed;
        connection failures that outlast it raise `TransientError`.
        """
        where = where or self.registry
        backoff = Backoff(self.retry, self.sleep)
        url = self.url(path_or_url)
        challenged = False
        redirects = 0
        while True:
            all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
            if self.auth is not None and urllib.parse.urlsplit(url).netloc == self.netloc:
                # Credentials go only to the registry itself, never to a redirect target (blob storage, CDN).
                all_headers.update(self.auth.headers(scopes))
            try:
                response = self._send_once(method, url, all_headers, body, stream)
            except ssl.SSLCertVerificationError as e:
                raise RegistryError(where, f"TLS certificate verification failed: {e.verify_message}",
                                    "add the registry's CA to the system trust store, or pass --insecure "
                                    "only for a registry you trust") from None
            except ssl.SSLError as e:
                if self.insecure and self.scheme == "https" and urllib.parse.urlsplit(url).scheme == "https":
                    # An insecure registry that speaks plain HTTP: switch once, as docker does.
                    self.scheme = "http"
                    url = urllib.parse.urlunsplit(("http",) + tuple(urllib.parse.urlsplit(url)[1:]))
                    continue
                raise RegistryError(where, f"TLS error: {describe_exception(e)}",
                                    "check the registry address and port") from None
            except socket.gaierror as e:
                raise RegistryError(where, f"cannot resolve {urllib.parse.urlsplit(url).hostname}: {e.strerror}",
                                    "check the registry host name") from None
            except _RETRYABLE_EXCEPTIONS as e:
                if retry and backoff.wait():
                    continue
                raise TransientError(where, f"{method} {urllib.parse.urlsplit(url).path} failed: "
                                     f"{describe_exception(e)} (after {backoff.attempt} attempt(s))",
                                     "the registry is unreachable or keeps dropping connections; retry later") from None
            except OSError as e:
                raise RegistryError(where, f"{method} {urllib.parse.urlsplit(url).path} failed: "
                                    f"{describe_exception(e)}", "check the registry address") from None

            if response.status == 401 and self.auth is not None and not challenged:
                challenged = True
                if self.auth.challenge(response.header("WWW-Authenticate"), scopes, where):
                    response.close()
                    continue
            if retry and is_retryable_status(response.status):
                if backoff.wait(_retry_after(response.header("Retry-After"))):
                    response.close()
                    continue
                return response  # budget spent: the caller names what failed from the final answer
            if (follow_redirects and method in ("GET", "HEAD") and response.status in (301, 302, 303, 307, 308)
                    and response.header("Location") and redirects < MAX_REDIRECTS):
                redirects += 1
                url = urllib.parse.urljoin(url, response.header("Location") or "")
                response.close()
                if urllib.parse.urlsplit(url).scheme == "http" and not self.plain_http_allowed(
                        urllib.parse.urlsplit(url).netloc):
                    raise RegistryError(where, "registry redirected to a plain-HTTP URL", "refusing to follow it")
                continue
            return response


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
