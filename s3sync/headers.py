"""The headers each object should have: per-path rules, headers for every file, a digest.

A push sends, for every file, the headers its first matching ``[[rules]]`` table sets,
over the ``--header`` values every file gets, over the Content-Type chosen by name and
content (``--content-type`` forces one type over all of them). The digest of the result
is stored with the object, so a push can tell when only the headers must change.
"""

from __future__ import annotations

import functools
import importlib
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from s3sync.errors import ConfigError
from s3sync.filters import compile_rule, covers

DIGEST_KEY = "s3sync-headers"  # user metadata that holds the digest of the headers sent

# rule key (as in the config file) -> boto3 argument
_RULE_FIELDS = {
    "cache-control": "CacheControl",
    "content-type": "ContentType",
    "content-disposition": "ContentDisposition",
    "content-language": "ContentLanguage",
    "expires": "Expires",
    "website-redirect-location": "WebsiteRedirectLocation",
    "storage-class": "StorageClass",
    "acl": "ACL",
}
# HTTP header name (lower case) -> boto3 argument, for --header
_HTTP_FIELDS = {
    **{name: arg for name, arg in _RULE_FIELDS.items() if name not in ("storage-class", "acl")},
    "x-amz-website-redirect-location": "WebsiteRedirectLocation",
    "x-amz-storage-class": "StorageClass",
    "x-amz-acl": "ACL",
}
_META = "x-amz-meta-"
# what --gzip compresses: text that browsers fetch and that shrinks well
GZIP_EXTENSIONS = frozenset(
    {"html", "htm", "css", "js", "mjs", "json", "svg", "xml", "txt", "map", "webmanifest"}
    | {"rss", "atom"}
)
_GZIP_SUFFIX = "+gzip"  # ends the digest of the headers of a compressed object


class HeaderRule(NamedTuple):
    """One ``[[rules]]`` table: a glob and the headers of the paths it matches first."""

    glob: str
    fields: Mapping[str, str] = types.MappingProxyType({})  # boto3 argument -> value
    metadata: Mapping[str, str] = types.MappingProxyType({})
    gzip: bool | None = None  # None: as --gzip says


def rule_from_table(table: Mapping[str, Any], where: str) -> HeaderRule:
    """Return the rule a ``[[rules]]`` table describes; ConfigError naming *where* if bad."""
    glob = table.get("match")
    if not isinstance(glob, str) or not glob:
        raise ConfigError(f'{where}: a [[rules]] table needs match = "GLOB"')
    try:
        compile_rule(True, glob)
    except ConfigError as exc:
        raise ConfigError(f"{where}: match: {exc}") from None
    fields: dict[str, str] = {}
    metadata: dict[str, str] = {}
    gzip = table.get("gzip")
    if gzip is not None and not isinstance(gzip, bool):
        raise ConfigError(f"{where}: gzip must be true or false, not {gzip!r}")
    for key, value in table.items():
        if key in ("match", "gzip"):
            continue
        if key == "metadata":
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ConfigError(f"{where}: metadata must be a table of strings")
            metadata.update(_metadata_key(k, where) for k in value.items())
            continue
        arg = _RULE_FIELDS.get(key)
        if arg is None:
            known = ", ".join(["match", *_RULE_FIELDS, "metadata", "gzip"])
            raise ConfigError(f"{where}: unknown key '{key}' in [[rules]] (known keys: {known})")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a string, not {value!r}")
        fields[arg] = _field_value(arg, value, f"{where}: '{key}'")
    return HeaderRule(glob, fields, metadata, gzip)


def _metadata_key(item: tuple[str, str], where: str) -> tuple[str, str]:
    name, value = item
    name = name.lower()
    if not name or not all(c.isascii() and (c.isalnum() or c in "-_") for c in name):
        raise ConfigError(f"{where}: metadata name '{name}' must be ASCII letters, digits, - or _")
    return name, header_value(value, f"{where}: metadata '{name}'")


def metadata_pair(item: str, where: str = "--metadata") -> tuple[str, str]:
    """Return ``(name, value)`` from ``KEY=VALUE``; ConfigError for anything S3 cannot
    keep as user metadata."""
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ConfigError(f"{where} '{item}' is not KEY=VALUE")
    return _metadata_key((name, value), where)


def _field_value(arg: str, value: str, where: str) -> str:
    """Return the *value* of the boto3 argument *arg*; ConfigError when S3 would refuse
    it (every object of the run would fail alike)."""
    header_value(value, where)
    if arg == "Expires" and not _is_date(value):
        raise ConfigError(
            f"{where}: '{value}' is not a date (write e.g. Thu, 01 Dec 2033 16:00:00 GMT "
            "or 2033-12-01T16:00:00Z)"
        )
    return value


def _is_date(text: str) -> bool:
    """Return True when *text* is an HTTP date or an ISO 8601 one, as botocore takes."""
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        parsedate_to_datetime(text)
        return True
    except (TypeError, ValueError, IndexError):
        pass
    try:
        datetime.fromisoformat(text)
        return True
    except ValueError:
        return False


def header_value(value: str, where: str) -> str:
    """Return *value*; ConfigError when it cannot travel in an HTTP header: a control
    character (a CR or LF would end the header line: every request would be refused),
    or a character outside Latin-1."""
    bad = next((c for c in value if (ord(c) < 32 and c != "\t") or ord(c) == 127), None)
    if bad is not None:
        raise ConfigError(f"{where}: the value holds a control character ({bad!r})")
    if any(ord(c) > 255 for c in value):
        raise ConfigError(f"{where}: the value holds characters HTTP headers cannot carry")
    return value


def parse_header(line: str) -> tuple[str, str, str]:
    """Return ``(kind, name, value)`` from ``--header "Name: value"``: kind is ``field``
    (name is the boto3 argument) or ``metadata``; ConfigError for a header S3 would not
    keep (it would not be served back)."""
    name, colon, value = line.partition(":")
    name, value = name.strip().lower(), value.strip()
    if not colon or not name or not value:
        raise ConfigError(f"--header '{line}': write it as \"Name: value\"")
    if name.startswith(_META):
        return ("metadata", *_metadata_key((name.removeprefix(_META), value), "--header"))
    arg = _HTTP_FIELDS.get(name)
    if arg is None:
        known = ", ".join(sorted({*_HTTP_FIELDS, _META + "NAME"}))
        raise ConfigError(f"--header '{line}': S3 does not keep '{name}' (it can keep: {known})")
    return "field", arg, _field_value(arg, value, f"--header '{name}'")


class Headers:
    """The headers of every object of a push, and their digest."""

    def __init__(
        self,
        rules: Sequence[HeaderRule] = (),
        lines: Sequence[str] = (),
        *,
        content_type: str | None = None,
        gzip: bool = False,
    ) -> None:
        self._rules = [(rule, compile_rule(True, rule.glob)) for rule in rules]
        self._gzip = gzip
        self._fields: dict[str, str] = {}
        self._metadata: dict[str, str] = {}
        for line in lines:
            kind, name, value = parse_header(line)
            (self._metadata if kind == "metadata" else self._fields)[name] = value
        self._forced_type = content_type and header_value(content_type, "--content-type")
        # more than the defaults (gzip alone is not: a listing tells a compressed object)
        self.configured = bool(rules or lines or content_type)
        # whether any file may be compressed: only then does gzipped() need asking
        self.may_gzip = gzip or any(rule.gzip for rule in rules)
        self._digests: dict[tuple[int, bool, str | None], str] = {}

    def _first(self, relpath: str) -> HeaderRule | None:
        return self._first_at(relpath)[1]

    def _first_at(self, relpath: str) -> tuple[int, HeaderRule | None]:
        for at, (rule, compiled) in enumerate(self._rules):
            if covers(compiled, relpath):
                return at, rule
        return -1, None

    def gzipped(self, relpath: str) -> bool:
        """Return whether the object of *relpath* is sent gzip-compressed: its first rule's
        ``gzip`` says, else --gzip for the text extensions in GZIP_EXTENSIONS."""
        return self.may_gzip and self._gzipped(relpath, self._first(relpath))

    def _gzipped(self, relpath: str, rule: HeaderRule | None) -> bool:
        if rule is not None and rule.gzip is not None:
            return rule.gzip
        return self._gzip and relpath.rpartition(".")[2].lower() in GZIP_EXTENSIONS

    def for_path(
        self, relpath: str, guess: Callable[[], str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Return ``(fields, metadata)`` for the object of *relpath*: boto3 arguments
        (ContentType always among them, ContentEncoding when it is compressed) and user
        metadata. *guess* is only called when nothing sets the type."""
        rule = self._first(relpath)
        return self._compose(rule, self.may_gzip and self._gzipped(relpath, rule), guess)

    def digest_for(self, relpath: str, guess: Callable[[], str]) -> str:
        """Return ``digest(*self.for_path(relpath, guess))``, remembered for each first
        rule, compression and guessed type: a no-op push asks it for every file, and
        hashing the headers of each would cost it a third of its time."""
        at, rule = self._first_at(relpath)
        gzipped = self.may_gzip and self._gzipped(relpath, rule)
        # a type that is set leaves nothing for a guess to change
        guessed = None if self._type_set(rule) else guess()
        key = (at, gzipped, guessed)
        known = self._digests.get(key)
        if known is None:
            known = digest(*self._compose(rule, gzipped, lambda: guessed or ""))
            self._digests[key] = known
        return known

    def _type_set(self, rule: HeaderRule | None) -> bool:
        """Whether the Content-Type is set (forced, by --header, or by *rule*), not guessed."""
        return (
            self._forced_type is not None
            or "ContentType" in self._fields
            or (rule is not None and "ContentType" in rule.fields)
        )

    def _compose(
        self, rule: HeaderRule | None, gzipped: bool, guess: Callable[[], str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        fields = dict(self._fields)
        metadata = dict(self._metadata)
        if rule is not None:
            fields.update(rule.fields)
            metadata.update(rule.metadata)
        if gzipped:
            fields["ContentEncoding"] = "gzip"
        if self._forced_type is not None:
            fields["ContentType"] = self._forced_type
        elif not self._type_set(rule):
            fields["ContentType"] = guess()
        return fields, metadata


def digest(fields: Mapping[str, str], metadata: Mapping[str, str]) -> str:
    """Return a short, stable digest of the headers an object should have; it ends in
    ``+gzip`` when they say the object is compressed (see ``gzipped_digest``)."""
    core = _digest(tuple(sorted(fields.items())), tuple(sorted(metadata.items())))
    return core + _GZIP_SUFFIX if fields.get("ContentEncoding") == "gzip" else core


def gzipped_digest(value: str | None) -> bool:
    """Return whether headers of digest *value* say the object is compressed. A change of
    this cannot be fixed in place: the bytes differ."""
    return value is not None and value.endswith(_GZIP_SUFFIX)


@functools.lru_cache(maxsize=256)  # a no-op push asks it for every file: few distinct sets
def _digest(fields: tuple[tuple[str, str], ...], metadata: tuple[tuple[str, str], ...]) -> str:
    return _sha256_hex(_json_text((fields, metadata)).encode())[:16]


def _json_text(lists: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """Return ``json.dumps(lists)``: nested lists of strings, written as json writes them,
    without loading json (a no-op push pays every import; json costs a millisecond)."""
    try:
        from _json import encode_basestring_ascii as quote  # json.dumps's own string writer
    except ImportError:  # not CPython
        import json

        return json.dumps(lists)
    rows = (", ".join(f"[{quote(k)}, {quote(v)}]" for k, v in pairs) for pairs in lists)
    return "[" + ", ".join(f"[{row}]" for row in rows) + "]"


def _sha256_hex(data: bytes) -> str:
    """Return the SHA-256 of *data* in hex, from Python's own module when it has one:
    hashlib loads OpenSSL, two milliseconds of every push that makes a digest."""
    for name in ("_sha2", "_sha256"):  # Python 3.12 and later, 3.11
        try:
            module: Any = importlib.import_module(name)
        except ImportError:
            continue
        return str(module.sha256(data).hexdigest())
    import hashlib  # a Python built without them

    return hashlib.sha256(data).hexdigest()
