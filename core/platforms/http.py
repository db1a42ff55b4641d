"""HTTP transport shared by the WeChat and DingTalk clients.

`make_session` returns a `requests.Session` whose adapter can redirect the platforms'
public hosts to another base URL (the fake API servers in tests, a proxy in staging),
applies default timeouts and retries only what is safe to retry.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

WECHAT_API = "https://api.weixin.qq.com"
DINGTALK_OAPI = "https://oapi.dingtalk.com"
DINGTALK_API = "https://api.dingtalk.com"
KNOWN_HOSTS = (WECHAT_API, DINGTALK_OAPI, DINGTALK_API)

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0

# Synthetic error codes for failures that never produced a platform errcode.
ERRCODE_NETWORK = -1000
ERRCODE_HTTP_STATUS = -1001
ERRCODE_BAD_RESPONSE = -1002
ERRCODE_TOKEN_UNAVAILABLE = -1003

# GET endpoints that consume a one-time code: a second attempt after a read timeout
# would burn the code (WeChat answers 40163), so only connection failures are retried.
_SINGLE_USE_GETS = (f"{WECHAT_API}/sns/jscode2session",)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class PlatformError(Exception):
    """A WeChat or DingTalk call failed.

    `transient`: retry later with backoff (network, busy, rate limits, token trouble
    that survived one refresh). `permanent`: retrying cannot help (bad openid, user
    refused, window closed, invalid template...). Neither flag set: unclassified,
    e.g. configuration errors (bad secret, IP whitelist); retry a bounded number of
    times and surface to operators. `ambiguous`: the request may have reached the
    platform (read timeout on a POST), so a retry could deliver twice.
    """

    def __init__(
        self,
        errcode: int,
        errmsg: str,
        *,
        platform: str,
        transient: bool = False,
        permanent: bool = False,
        sub_code: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(f"{platform} error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.platform = platform
        self.transient = transient
        self.permanent = permanent
        self.sub_code = sub_code
        self.ambiguous = ambiguous

    def __repr__(self) -> str:
        return (
            f"PlatformError({self.platform!r}, {self.errcode}, {self.errmsg!r}, "
            f"transient={self.transient}, permanent={self.permanent})"
        )


def network_error(platform: str, exc: requests.RequestException, method: str) -> PlatformError:
    """Map a requests exception to a transient PlatformError."""
    # A connect failure means nothing was sent; anything later may have been processed.
    ambiguous = method.upper() != "GET" and not _never_sent(exc)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return PlatformError(
            ERRCODE_HTTP_STATUS,
            f"HTTP {exc.response.status_code}",
            platform=platform,
            transient=exc.response.status_code >= 500 or exc.response.status_code == 429,
            ambiguous=ambiguous,
        )
    return PlatformError(
        ERRCODE_NETWORK,
        f"{type(exc).__name__}: {exc}",
        platform=platform,
        transient=True,
        ambiguous=ambiguous,
    )


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


class RewritingAdapter(HTTPAdapter):
    """Sends requests for known hosts to configured base URLs; adds default timeouts."""

    def __init__(self, rewrites: dict[str, str], retries: Retry, **kwargs) -> None:
        self._rewrites = {_origin(src): dst.rstrip("/") for src, dst in rewrites.items()}
        super().__init__(max_retries=retries, **kwargs)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        target = self._rewrites.get(f"{parts.scheme}://{parts.netloc}".lower())
        if target:
            dst = urlsplit(target)
            request.url = urlunsplit(
                (dst.scheme, dst.netloc, dst.path + parts.path, parts.query, parts.fragment)
            )
            if dst.hostname in _LOOPBACK:
                proxies = None  # an environment proxy must not swallow local fakes
        if timeout is None:
            timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _retry(read_retries: int) -> Retry:
    return Retry(
        total=3,
        connect=2,
        read=read_retries,
        status=read_retries,
        other=0,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=(500, 502, 503, 504),
        backoff_factor=0.2,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def make_session(rewrites: dict[str, str] | None = None) -> requests.Session:
    """Build the session every platform call goes through.

    `rewrites` maps a public origin (e.g. ``https://api.weixin.qq.com``) to a base URL
    (e.g. ``http://127.0.0.1:8123``); the path and query are kept. Timeouts default to
    3 s connect / 5 s read. Connection failures are retried for every method (nothing
    was sent); read errors and 5xx answers only for GETs, except single-use-code GETs.
    """
    rewrites = dict(rewrites or {})
    session = requests.Session()
    default = RewritingAdapter(rewrites, _retry(read_retries=2))
    session.mount("https://", default)
    session.mount("http://", default)
    for prefix in _SINGLE_USE_GETS:
        session.mount(prefix, RewritingAdapter(rewrites, _retry(read_retries=0)))
    return session
