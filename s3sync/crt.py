"""One-request uploads through the AWS Common Runtime: the only module that imports awscrt.

awscrt signs and sends requests on native threads, outside the GIL: about 0.7 ms of
this process's CPU per small PutObject, against about 3 ms through botocore. s3sync
sends small files this way when awscrt is installed (``S3SYNC_CRT=0`` turns it off);
everything else, and everything when it is missing, goes through botocore. Retries
stay s3sync's: the runtime's own are off, so each failure is counted and classified.
"""

from __future__ import annotations

import io as stdio
import os
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import quote, urlsplit

try:
    from awscrt import auth, http, s3
    from awscrt import io as crt_io
except ImportError:  # pragma: no cover - the boto3 path is tested with S3SYNC_CRT=0
    s3 = None

# boto3 argument -> the HTTP header it is sent as
HEADER_NAMES = {
    "ContentType": "Content-Type",
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "Expires": "Expires",
    "WebsiteRedirectLocation": "x-amz-website-redirect-location",
    "StorageClass": "x-amz-storage-class",
    "ACL": "x-amz-acl",
}
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_UNRESERVED = "-_.~/"  # what S3's path encoding leaves as is (and "/", between segments)
Credentials = Callable[[], tuple[str, str, str | None]]


class CrtFailure(Exception):
    """A request through awscrt failed: the S3 error *code* (or ConnectionError,
    ReadTimeout, NotS3), the HTTP *status* when an answer came, and a *detail*."""

    def __init__(self, code: str, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail


def available() -> bool:
    """Return whether uploads can go through awscrt here."""
    return s3 is not None and os.environ.get("S3SYNC_CRT", "1") != "0"


class CrtUploader:
    """PutObject and GetObject of small objects on one CRT S3 client: blocking calls,
    from any thread."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        region: str,
        credentials: Credentials,
        timeout: float,
        path_style: bool,
    ) -> None:
        assert s3 is not None
        parts = urlsplit(endpoint)
        secure = parts.scheme == "https"
        if path_style or "." in bucket:  # a dotted bucket would not match the certificate
            self._host, self._prefix = parts.netloc, f"/{quote(bucket, safe='')}/"
        else:
            self._host, self._prefix = f"{bucket}.{parts.netloc}", "/"
        self._timeout = timeout

        def provide() -> Any:
            key, secret, token = credentials()
            return auth.AwsCredentials(key, secret, token)

        elg = crt_io.EventLoopGroup(2)
        bootstrap = crt_io.ClientBootstrap(elg, crt_io.DefaultHostResolver(elg))
        provider = auth.AwsCredentialsProvider.new_delegate(provide)
        self._client = s3.S3Client(
            bootstrap=bootstrap,
            region=region,
            tls_mode=s3.S3RequestTlsMode.ENABLED if secure else s3.S3RequestTlsMode.DISABLED,
            signing_config=s3.create_default_s3_signing_config(
                region=region, credential_provider=provider
            ),
            multipart_upload_threshold=5 * 1024**3,  # never split: s3sync does multipart
            retry_config=s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE),
            connect_timeout_ms=int(min(10.0, timeout) * 1000),
        )

    def put(
        self,
        key: str,
        body: bytes | bytearray,
        fields: Mapping[str, str],
        metadata: Mapping[str, str],
    ) -> str:
        """Store *body* as *key* with *fields* (boto3 argument names) and user *metadata*;
        return the ETag, or raise CrtFailure."""
        assert s3 is not None
        headers = [
            ("Host", self._host),
            ("Content-Length", str(len(body))),
            *((HEADER_NAMES[name], value) for name, value in fields.items()),
            *((f"x-amz-meta-{name}", value) for name, value in metadata.items()),
        ]
        request = http.HttpRequest(
            "PUT",
            self._path(key),
            http.HttpHeaders(headers),
            stdio.BytesIO(bytes(body)),
        )
        answer = self._send(s3.S3RequestType.PUT_OBJECT, request, None, len(body))
        return _etag(answer)

    def get(self, key: str, size: int) -> tuple[list[tuple[str, str]], bytes]:
        """Return the headers and the body of *key*, listed with *size* bytes (small: it
        is held in memory), or raise CrtFailure."""
        assert s3 is not None
        request = http.HttpRequest("GET", self._path(key), http.HttpHeaders([("Host", self._host)]))
        chunks: list[bytes] = []
        answer = self._send(s3.S3RequestType.GET_OBJECT, request, chunks, size)
        _etag(answer)  # a success has one; anything else raises
        return answer["headers"], b"".join(chunks)

    def _path(self, key: str) -> str:
        return self._prefix + quote(key, safe=_UNRESERVED)

    def _send(
        self, kind: Any, request: Any, chunks: list[bytes] | None, size: int
    ) -> dict[str, Any]:
        """Send *request* of *size* bytes, wait for the end; return what the callbacks
        were told. The runtime has no idle timeout, so the whole request gets the
        timeout plus time for its bytes at a slow 64 KiB/s before it is cancelled."""
        answer: dict[str, Any] = {}
        done = threading.Event()

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            answer["status"] = status_code
            answer["headers"] = headers
            answer["etag"] = next((v for k, v in headers if k.lower() == "etag"), None)

        def on_body(chunk: bytes, **_: Any) -> None:
            if chunks is not None:
                chunks.append(bytes(chunk))

        def on_done(**kwargs: Any) -> None:
            answer.update(kwargs)
            done.set()

        sent = self._client.make_request(
            type=kind,
            request=request,
            on_headers=on_headers,
            on_body=on_body if chunks is not None else None,
            on_done=on_done,
        )
        try:
            sent.finished_future.result(timeout=self._timeout + size / 65536)
        except FutureTimeout:
            sent.cancel()
            done.wait()
            raise CrtFailure("ReadTimeout", None, f"no answer in {self._timeout:g}s") from None
        except Exception:  # the details are in what on_done was given
            pass
        done.wait()
        return answer


def _etag(answer: Mapping[str, Any]) -> str:
    """Return the ETag of a successful answer; raise CrtFailure for any other."""
    status = answer.get("status_code") or answer.get("status")
    error = answer.get("error")
    if error is None and status is not None and status < 300:
        etag = answer.get("etag")
        if not etag:  # a web page answering 200 is not a stored object
            raise CrtFailure("NotS3", status, "answer without ETag")
        return str(etag) if str(etag).startswith('"') else f'"{etag}"'
    if status is not None and status >= 300:
        body = answer.get("error_body") or b""
        found = _CODE.search(body)
        code = found.group(1).decode(errors="replace") if found else str(status)
        message = re.search(rb"<Message>([^<]{1,300})</Message>", body)
        detail = message.group(1).decode(errors="replace") if message else code
        raise CrtFailure(code, status, detail)
    name = str(getattr(error, "name", "") or type(error).__name__)
    raise CrtFailure("ReadTimeout" if "TIMEOUT" in name else "ConnectionError", None, name)
