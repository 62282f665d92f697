"""S3's protocol as botocore speaks it, for requests that awscrt moves (``s3sync.crt``),
and the integrity checks every upload carries, on either path.

botocore builds each request (endpoint from ``--endpoint-url``, ``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL`` or the profile; addressing; parameters to headers and query) and
reads each answer (success headers, error codes). The runtime only signs and sends:
no addressing, encoding or parsing rules of S3 are written here.

Integrity: every PutObject and UploadPart with a body in memory carries Content-MD5,
which the server checks (BadDigest when the bytes it got differ); a PutObject also
carries a CRC32 (``x-amz-checksum-crc32``) that the server checks and stores, so any
tool can verify the object later. The ETag of the answer must then be the MD5 sent,
unless the object is encrypted with KMS or a customer key (whose ETags are no MD5s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from s3sync.crt import Answer, Built, CrtFailure

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

MD5_CONTEXT = "s3sync_md5"  # where a request's context keeps the MD5 its body was sent with
# what every real answer to these operations holds (botocore fills it from S3's XML or headers)
ANSWERED_BY_S3 = {
    "ListObjectsV2": "IsTruncated",
    "PutObject": "ETag",
    "HeadObject": "LastModified",
    "GetObject": "LastModified",
    "CreateMultipartUpload": "UploadId",
    "UploadPart": "ETag",
    "CompleteMultipartUpload": "ETag",
    "CopyObject": "CopyObjectResult",
    "UploadPartCopy": "CopyPartResult",
}


class DigestMismatch(Exception):
    """The server stored an object whose ETag is not the MD5 of the bytes sent."""

    def __init__(self, key: str, etag: str, md5: str) -> None:
        super().__init__(f"the server stored {etag}, not the MD5 {md5} of what was sent")
        self.key = key
        self.etag = etag


class _Built(Exception):
    """Carries a request botocore built out of its send path, unsent."""

    def __init__(self, request: Any) -> None:
        super().__init__("built")
        self.request = request


def add_checksums(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    """botocore's ``before-parameter-build`` handler of PutObject and UploadPart: give a
    body held in memory its Content-MD5 (and a PutObject its CRC32), unless the caller
    set one, and keep the MD5 in the request's context for ``check_etag``."""
    body = params.get("Body")
    if not isinstance(body, (bytes, bytearray, memoryview)) or "ContentMD5" in params:
        return
    import base64  # here, not on import: a run that uploads nothing never loads them
    import hashlib
    import zlib

    digest = hashlib.md5(body).digest()
    params["ContentMD5"] = base64.b64encode(digest).decode()
    context[MD5_CONTEXT] = digest.hex()
    if model.name == "PutObject" and not any(name.startswith("Checksum") for name in params):
        params["ChecksumCRC32"] = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


def check_answer(
    parsed: Mapping[str, Any], model: Any, context: Mapping[str, Any], **_: Any
) -> None:
    """botocore's ``after-call`` handler: refuse a success that lacks what S3 always
    sends (a web page answering 200 must never pass for a listing or a stored object),
    and an upload whose ETag is not the MD5 sent."""
    status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)
    if status >= 300:
        return
    needed = ANSWERED_BY_S3.get(model.name)
    if needed is not None and needed not in parsed:
        from botocore.parsers import ResponseParserError

        raise ResponseParserError(f"{model.name} answer without {needed}")
    md5 = context.get(MD5_CONTEXT)
    if md5 is not None:
        check_etag(str(context.get("s3sync_key", "")), parsed, md5)


def check_etag(key: str, parsed: Mapping[str, Any], md5: str) -> None:
    """Raise DigestMismatch when the ETag of an upload's answer must be *md5* and is not."""
    if parsed.get("SSECustomerAlgorithm") or str(parsed.get("ServerSideEncryption", "")).startswith(
        "aws:kms"
    ):
        return  # such ETags are no MD5s
    etag = str(parsed.get("ETag", "")).strip('"').lower()
    if len(etag) == 32 and etag != md5:
        raise DigestMismatch(key, f'"{etag}"', md5)


def _remember_key(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["s3sync_key"] = params.get("Key", "")


def guard(client: Any) -> None:
    """Register the integrity checks and the answer check on a botocore S3 *client*."""
    events = client.meta.events
    for operation in ("PutObject", "UploadPart"):
        events.register(f"before-parameter-build.s3.{operation}", add_checksums)
    events.register("before-parameter-build.s3.PutObject", _remember_key)  # a part is no object
    events.register("after-call.s3", check_answer)


class BotocoreProtocol:
    """Builds S3 requests and reads their answers with botocore, for awscrt to send.

    Made from the same session, endpoint, region and config as the boto3 client, so
    both paths address the same place: ``endpoint_url`` is where requests go.
    """

    def __init__(
        self,
        session: boto3.session.Session,
        *,
        endpoint_url: str | None,
        region: str,
        config: Config,
    ) -> None:
        from botocore import UNSIGNED
        from botocore.config import Config
        from botocore.parsers import create_parser

        unsigned = config.merge(Config(signature_version=UNSIGNED))  # the runtime signs
        self._client = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=unsigned
        )
        guard(self._client)
        self._client.meta.events.register("before-send.s3", _hold)
        self.endpoint_url: str = self._client.meta.endpoint_url
        self._model = self._client.meta.service_model
        self._parser = create_parser("rest-xml")

    def request(self, method: str, **params: Any) -> tuple[Built, str | None]:
        """Return the request botocore's *method* (``put_object``...) builds of *params*,
        and the MD5 its body is sent with (for ``answer`` to check), if any."""
        try:
            getattr(self._client, method)(**params)
        except _Built as built:
            request = built.request
        else:  # pragma: no cover - _hold always raises
            raise AssertionError("botocore sent a request it was to build")
        headers = [(k, v if isinstance(v, str) else v.decode()) for k, v in request.headers.items()]
        body = request.body
        if body is not None and not isinstance(body, bytes):
            body = bytes(body) if isinstance(body, (bytearray, memoryview)) else body.read()
        import base64

        sent = next((v for k, v in headers if k.lower() == "content-md5"), None)
        md5 = base64.b64decode(sent).hex() if sent else None
        return Built(request.method, request.url, headers, body or None), md5

    def answer(
        self, operation: str, answer: Answer, *, key: str = "", md5: str | None = None
    ) -> dict[str, Any]:
        """Return botocore's reading of *answer* to *operation* (``PutObject``...); raise
        its ClientError for an error answer, the CrtFailure when none came, and what
        ``check_answer`` raises for a success that is not one."""
        if answer.failure is not None:
            raise answer.failure
        if answer.status is None:  # pragma: no cover - an Answer has one or the other
            raise CrtFailure("ConnectionError", None, "no answer")
        from botocore.awsrequest import HeadersDict
        from botocore.exceptions import ClientError

        model = self._model.operation_model(operation)
        response = {
            "status_code": answer.status,
            "headers": HeadersDict(answer.headers),
            "body": answer.body,
        }
        shape = model.output_shape if answer.status < 300 else None  # an error: its own
        parsed: dict[str, Any] = self._parser.parse(response, shape)  # type: ignore[arg-type]
        if answer.status >= 300:
            raise ClientError(parsed, operation)  # type: ignore[arg-type]
        check_answer(parsed, model, {MD5_CONTEXT: md5, "s3sync_key": key})
        return parsed


def _hold(request: Any, **_: Any) -> None:
    """botocore's ``before-send`` handler on the Protocol's client: stop the request,
    built, and hand it back."""
    raise _Built(request)
