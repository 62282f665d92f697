"""S3's protocol as botocore speaks it, for requests that awscrt moves (``s3sync.store.crt``),
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

import datetime
import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from s3sync.store.crt import Answer, Built, CrtFailure

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

MD5_CONTEXT = "s3sync_md5"  # where a request's context keeps the MD5 its body was sent with
KEY_CONTEXT = "s3sync_key"  # and the key of the object it stores
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
    """Bytes are not what their checksum says: the server stored an object (*key*, when
    it must be removed) whose ETag is not the MD5 of the bytes sent, or a download
    does not match the checksum the server keeps (*etag* empty)."""

    def __init__(self, key: str, etag: str, md5: str) -> None:
        told = f"the server stored {etag}, not the MD5 {md5} of what was sent"
        super().__init__(told if etag else f"the object's stored {md5}")
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
        params["ChecksumCRC32"] = crc32_text(zlib.crc32(body))


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
        check_etag(str(context.get(KEY_CONTEXT, "")), parsed, md5)


def check_etag(key: str, parsed: Mapping[str, Any], md5: str) -> None:
    """Raise DigestMismatch when the ETag of an upload's answer must be *md5* and is not."""
    if parsed.get("SSECustomerAlgorithm") or str(parsed.get("ServerSideEncryption", "")).startswith(
        "aws:kms"
    ):
        return  # such ETags are no MD5s
    etag = str(parsed.get("ETag", "")).strip('"').lower()
    if len(etag) == 32 and etag != md5:
        raise DigestMismatch(key, f'"{etag}"', md5)


def check_stored_crc32(parsed: Mapping[str, Any], chunks: Iterable[bytes]) -> None:
    """Raise DigestMismatch when a GET's answer gives the object's whole CRC32 (asked
    for with ``ChecksumMode``; a multipart object's composite one, ``…-N``, is not
    checked) and the *chunks* received do not have it."""
    told = parsed.get("ChecksumCRC32")
    if not told or "-" in str(told):
        return
    import zlib

    crc = 0
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
    got = crc32_text(crc)
    if got != told:
        raise DigestMismatch("", "", f"CRC32 {told}, the bytes received {got}")


def crc32_text(crc: int) -> str:
    """Return a CRC32 as S3 writes it in ``x-amz-checksum-crc32``: four big-endian bytes
    in base64."""
    import base64

    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def _remember_key(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[KEY_CONTEXT] = params.get("Key", "")


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

    The first request of each operation and bucket goes through the client's whole
    pipeline (parameter checks, endpoint rules, handlers): botocore resolves where the
    bucket's requests go. Later ones are made by botocore's serializer for that
    operation, joined to the endpoint learned (``prepare_request_dict``): the same
    request for a tenth of the CPU. Errors, and answers to other operations, are read
    by botocore's parser; successful GETs and PUTs by a HeaderReader of the members
    s3sync uses, following S3's model.
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
        from botocore.parsers import RestXMLParser
        from botocore.serialize import create_serializer
        from botocore.utils import parse_timestamp

        unsigned = config.merge(Config(signature_version=UNSIGNED))  # the runtime signs
        self._client = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=unsigned
        )
        guard(self._client)
        self._client.meta.events.register("before-send.s3", _hold)
        self.endpoint_url: str = self._client.meta.endpoint_url
        self._model = self._client.meta.service_model
        self._operations = {
            method: self._model.operation_model(name)
            for method, name in self._client.meta.method_to_api_mapping.items()
            if method in _QUICK
        }
        self._serializer = create_serializer("rest-xml", include_validation=False)
        # botocore's own reading of dates, in UTC (datetime's own zone: dateutil's costs
        # more than the reading), kept: objects stored in one burst share their dates
        dates = functools.lru_cache(maxsize=1024)(
            lambda text: parse_timestamp(text).astimezone(datetime.UTC)
        )
        self._parser = RestXMLParser(timestamp_parser=dates)
        self._learned: dict[tuple[str, str], tuple[str, str]] = {}
        self._readers = {
            name: HeaderReader(self._model.operation_model(name).output_shape, wanted, dates)
            for name, wanted in _READ.items()
        }

    def request(self, method: str, **params: Any) -> tuple[Built, str | None]:
        """Return the request botocore's *method* (``put_object``...) builds of *params*,
        and the MD5 its body is sent with (for ``answer`` to check), if any."""
        learned = self._learned.get((method, params["Bucket"]))
        if learned is None:
            request = self._fully(method, params)
        else:
            request = self._quickly(method, params, *learned)
        headers = [(k, v if isinstance(v, str) else v.decode()) for k, v in request.headers.items()]
        body = request.body
        if body is not None and not isinstance(body, bytes):
            body = bytes(body) if isinstance(body, (bytearray, memoryview)) else body.read()
        import base64

        sent = next((v for k, v in headers if k.lower() == "content-md5"), None)
        md5 = base64.b64decode(sent).hex() if sent else None
        return Built(request.method, request.url, headers, body or None), md5

    def _fully(self, method: str, params: dict[str, Any]) -> Any:
        """Build through the client's whole pipeline; learn the endpoint it chose."""
        try:
            getattr(self._client, method)(**params)
        except _Built as built:
            request = built.request
        else:  # pragma: no cover - _hold always raises
            raise AssertionError("botocore sent a request it was to build")
        operation = self._operations.get(method)
        if operation is not None:
            path = self._serializer.serialize_to_request(dict(params), operation)["url_path"]
            url = str(request.url).split("?", 1)[0]
            if path and url.endswith(path):  # else: always the whole pipeline
                agent = request.headers.get("User-Agent", b"")
                shown = agent.decode() if isinstance(agent, bytes) else str(agent)
                self._learned[(method, params["Bucket"])] = (url[: -len(path)], shown)
        return request

    def _quickly(self, method: str, params: dict[str, Any], endpoint: str, agent: str) -> Any:
        """Build with botocore's serializer, joined to the *endpoint* learned."""
        from botocore.awsrequest import create_request_object, prepare_request_dict

        operation = self._operations[method]
        if operation.name in ("PutObject", "UploadPart"):
            add_checksums(params, operation, {})
        serialized = self._serializer.serialize_to_request(params, operation)
        prepare_request_dict(serialized, endpoint, user_agent=agent)
        return create_request_object(serialized).prepare()

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
        model = self._model.operation_model(operation)
        reader = self._readers.get(operation)
        if answer.status < 300 and reader is not None:
            parsed = reader.read(answer.headers)  # the body is the caller's to read
        else:
            from botocore.awsrequest import HeadersDict  # seldom: errors, other operations

            response = {
                "status_code": answer.status,
                "headers": HeadersDict(answer.headers),
                "body": answer.body,
            }
            shape = model.output_shape if answer.status < 300 else None  # an error: its own
            parsed = self._parser.parse(response, shape)  # type: ignore[arg-type]
        if answer.status >= 300:
            from botocore.exceptions import ClientError

            raise ClientError(parsed, operation)  # type: ignore[arg-type]
        check_answer(parsed, model, {MD5_CONTEXT: md5, KEY_CONTEXT: key})
        return parsed


# the operations built by the serializer alone once their endpoint is known
_QUICK = frozenset({"put_object", "get_object", "list_objects_v2"})
# the members of each answer s3sync reads
# the headers of an object s3sync keeps and copies (as botocore names them)
KEPT_HEADERS = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
)
_READ = {
    "GetObject": (
        "ContentLength",
        "LastModified",
        "ETag",
        "Metadata",
        *KEPT_HEADERS,
        "ServerSideEncryption",
        "SSECustomerAlgorithm",
        "ChecksumCRC32",
    ),
    "PutObject": ("ETag", "ServerSideEncryption", "SSECustomerAlgorithm", "ChecksumCRC32"),
}


class HeaderReader:
    """Reads the members of an answer that live in its headers, as botocore's parser
    does, for the members s3sync uses: each from the header S3's model names (a prefix
    for a map such as Metadata), of the model's type, dates by botocore's reading. A
    small object's GET is answered a hundred times a second; botocore's parser would
    take a fifth of a restore's CPU over the thirty members it does not use."""

    def __init__(self, shape: Any, wanted: tuple[str, ...], dates: Any) -> None:
        self._fields: list[tuple[str, str, str]] = []
        self._maps: list[tuple[str, str]] = []
        for name in wanted:
            member = shape.members[name]
            where = member.serialization
            if where.get("location") == "headers":
                self._maps.append((name, where["name"].lower()))
            elif where.get("location") == "header":
                self._fields.append((name, where["name"].lower(), member.type_name))
        self._dates = dates

    def read(self, headers: list[tuple[str, str]]) -> dict[str, Any]:
        """Return the members *headers* hold, by name."""
        named = {k.lower(): v for k, v in headers}
        parsed: dict[str, Any] = {"ResponseMetadata": {"HTTPHeaders": named}}
        for name, header, kind in self._fields:
            value = named.get(header)
            if value is None:
                continue
            if kind == "timestamp":
                parsed[name] = self._dates(value)
            elif kind in ("long", "integer"):
                parsed[name] = int(value)
            else:
                parsed[name] = value
        for name, prefix in self._maps:
            parsed[name] = {k[len(prefix) :]: v for k, v in named.items() if k.startswith(prefix)}
        return parsed


def _hold(request: Any, **_: Any) -> None:
    """botocore's ``before-send`` handler on the Protocol's client: stop the request,
    built, and hand it back."""
    raise _Built(request)
