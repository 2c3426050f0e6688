"""JSON-RPC 2.0 framing: encoding, decoding, classification and message builders.

Messages are plain ``dict`` objects end to end: the gateway parses each line once and
serializes it once, and never builds model objects on the hot path.

One decoding and encoding policy for every front and back transport, whichever JSON
library is installed (orjson, the ``vmcp[fast]`` extra, or the standard library):

* A message is UTF-8 JSON. Bytes that are not UTF-8 (such as ``ED A0 80``, a surrogate
  encoded as UTF-8) and strings holding a lone surrogate (the escape ``"\\ud800"``, which
  JavaScript writes for a string cut inside an emoji) are refused with -32700; a surrogate
  *pair* written as escapes is an ordinary character.
* Nesting deeper than :data:`MAX_DEPTH` arrays and objects is refused with -32600 (orjson's
  own limit; the standard library path counts the levels and refuses the same messages).
* A refusal is a :class:`DecodeError` carrying the message's ``id`` when it can be read
  (a string or integer member ``id`` of the top-level object), so the answer names it.
* Encoding never fails on decoded data: a message orjson cannot write (too deep, a lone
  surrogate, an integer beyond 64 bits) is written by the standard library, a lone
  surrogate as its ``\\u`` escape (``\\ud800``). Only what is not JSON raises :class:`EncodeError`.

The checks run only once the fast path has failed: a well-formed message costs one parse.
"""

from __future__ import annotations

import json
import re
import sys
from itertools import accumulate
from typing import Any

from vmcp.protocol.errors import INVALID_REQUEST, PARSE_ERROR, RpcError

try:  # orjson (the ``vmcp[fast]`` extra) parses and writes JSON several times faster
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    orjson = None

#: the deepest nesting of arrays and objects accepted (orjson's own limit)
MAX_DEPTH = 1024

REQUEST = "request"
NOTIFICATION = "notification"
RESPONSE = "response"
INVALID = "invalid"


class DecodeError(RpcError):
    """A message refused by the decoding policy; ``request_id`` is its id when readable."""

    def __init__(self, code: int, message: str, request_id: str | int | None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


class EncodeError(ValueError):
    """A message holding something that is not JSON (a gateway or plugin bug)."""


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_ascii_encoder = json.JSONEncoder(separators=(",", ":"), check_circular=False)
#: a surrogate escape (half of a pair, or a lone one)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: a complete JSON string (the unrolled form, fast on long strings)
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
#: the tokens that matter to finding the top-level id: strings (skipped whole) and brackets
_TOKENS = re.compile(_STRING + rb"|[\[\]{}]", re.DOTALL)
_STRINGS = re.compile(_STRING, re.DOTALL)
_ID_VALUE = re.compile(rb'\s*:\s*(-?\d+|' + _STRING + rb")(?=\s*(?:[,}]|$))", re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
#: how far into a refused message its id is looked for (it comes first, in practice)
_ID_WINDOW = 64 * 1024


class _Deeper:
    """Raises the interpreter's recursion limit while the standard library walks a message
    up to :data:`MAX_DEPTH` deep (its C parser and encoder recurse once per level)."""

    def __init__(self, depth: int) -> None:
        self._wanted = sys.getrecursionlimit() + depth + 64
        self._old = 0

    def __enter__(self) -> None:
        self._old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self._old, self._wanted))

    def __exit__(self, *exc: object) -> None:
        sys.setrecursionlimit(self._old)


def _depth(data: bytes) -> int:
    """The deepest nesting of ``data`` (strings skipped), counted at C speed."""
    brackets = _STRINGS.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _find_id(data: bytes) -> str | int | None:
    """The top-level ``id`` of ``data`` when it is readable near its start."""
    depth = 0
    window = data[:_ID_WINDOW]
    for match in _TOKENS.finditer(window):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
        elif token in (b"]", b"}"):
            depth -= 1
        elif depth == 1 and token == b'"id"':
            value = _ID_VALUE.match(window, match.end())
            if value is not None:  # a key, not a value that happens to read "id"
                return _id_of(value.group(1))
    return None


def _id_of(raw: bytes) -> str | int | None:
    try:
        value = json.loads(raw)
        if isinstance(value, str):
            value.encode()  # a lone surrogate is no id to answer with
    except (ValueError, UnicodeError):
        return None
    return value if isinstance(value, str | int) else None


def readable_id(data: bytes | str) -> str | int | None:
    """The top-level ``id`` of a message that could not be decoded, when it can be read."""
    return _find_id(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _refuse(raw: bytes, code: int, reason: str) -> DecodeError:
    return DecodeError(code, reason, _find_id(raw))


def _std_decode(data: bytes | str) -> Any:
    """The policy, applied by the standard library (also where orjson gave up)."""
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
        text = data
    else:
        raw = data
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise _refuse(raw, PARSE_ERROR, f"Parse error: not UTF-8 ({exc.reason} at byte "
                                            f"{exc.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        # Deeper than the default recursion limit allows: parse again with room for
        # MAX_DEPTH levels; what still does not fit is too deep without counting.
        too_deep = _refuse(raw, INVALID_REQUEST,
                           f"Invalid request: nested deeper than {MAX_DEPTH} levels")
        try:
            with _Deeper(MAX_DEPTH):
                value = json.loads(text)
        except RecursionError:
            raise too_deep from None
        except ValueError as exc:
            raise _refuse(raw, PARSE_ERROR, f"Parse error: {exc}") from None
        if _depth(raw) > MAX_DEPTH:
            raise too_deep from None
    except ValueError as exc:
        raise _refuse(raw, PARSE_ERROR, f"Parse error: {exc}") from None
    if _SURROGATE_ESCAPE.search(raw) is not None and _has_lone_surrogate(value):
        raise _refuse(raw, PARSE_ERROR, "Parse error: a string holds a lone surrogate "
                                        "(not Unicode text)")
    return value


def _std_line(message: Any) -> bytes:
    try:
        try:
            return (_encoder.encode(message) + "\n").encode()
        except RecursionError:
            with _Deeper(MAX_DEPTH + 16):
                return (_encoder.encode(message) + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate: written as its escape
        return (_ascii_encoder.encode(message) + "\n").encode()
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"not JSON: {exc}") from None


if orjson is not None:
    _fast_dumps = orjson.dumps
    _fast_loads = orjson.loads
    _NEWLINE = orjson.OPT_APPEND_NEWLINE

    def encode_line(message: Any) -> bytes:
        """One message as a newline-terminated UTF-8 line (JSON never contains a raw newline).

        :raises EncodeError: the message holds something that is not JSON.
        """
        try:
            return _fast_dumps(message, option=_NEWLINE)
        except TypeError:  # big integers, lone surrogates, depth beyond orjson's 254
            return _std_line(message)

    def encode_kept_line(message: Any) -> bytes:
        """:func:`encode_line` for a line kept beyond its write (a replay buffer, a reply
        waiting for its client). orjson's bytes hold a buffer of at least 4 KiB whatever
        their length, so a kept line is copied to its own size: a reply of 100 bytes held
        for each of thousands of sessions would otherwise take 4 KiB each.
        """
        return bytes(memoryview(encode_line(message)))

    def decode(data: bytes | str) -> Any:
        """Parse one message under the policy above.

        :raises DecodeError: -32700 or -32600, with the id when it is readable.
        """
        try:
            return _fast_loads(data)
        except ValueError:  # not JSON, or JSON orjson refuses: the policy decides
            return _std_decode(data)

else:  # pragma: no cover - exercised where orjson is not installed
    encode_line = encode_kept_line = _std_line
    decode = _std_decode


def encode(message: dict[str, Any]) -> str:
    """One message as compact JSON text."""
    return encode_line(message)[:-1].decode()


def classify(message: dict[str, Any]) -> str:
    """:data:`REQUEST`, :data:`NOTIFICATION`, :data:`RESPONSE` or :data:`INVALID`.

    A message with a ``method`` member is a request (with ``id``) or a notification, whatever
    the member holds: a bad one is then refused, and answered when it has an id.
    """
    if "method" in message:
        return REQUEST if "id" in message else NOTIFICATION
    if "id" in message and ("result" in message or "error" in message):
        return RESPONSE
    return INVALID


#: the types a request id may have
ID_TYPES = frozenset((str, int))


def answerable_id(request_id: Any) -> str | int | None:
    """A request id a response may carry (a string or an integer), else None."""
    if isinstance(request_id, str | int) and not isinstance(request_id, bool):
        return request_id
    return None


def bad_method_or_id() -> RpcError:
    """The refusal of a request whose method is not a string or whose id is neither a
    string nor an integer (check ``type(method) is str and type(id) in ID_TYPES``)."""
    return RpcError(INVALID_REQUEST, "Invalid request: the method must be a string and the "
                    "id a string or an integer")


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a request."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a notification."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def result(request_id: Any, value: dict[str, Any]) -> dict[str, Any]:
    """Build a success response."""
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: Any, err: RpcError) -> dict[str, Any]:
    """Build an error response."""
    return {"jsonrpc": "2.0", "id": request_id, "error": err.to_error()}
