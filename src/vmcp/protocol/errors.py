"""JSON-RPC and MCP error codes, and the exception that carries one."""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: a backend is down, unreachable or died while the request was in flight
BACKEND_UNAVAILABLE = -32000
#: the request was not answered within its timeout (the SDK's REQUEST_TIMEOUT)
REQUEST_TIMEOUT = -32001
RESOURCE_NOT_FOUND = -32002
#: the client cancelled the request (LSP's RequestCancelled); used where a wire must end a
#: cancelled request with a response, as the Streamable HTTP front ends the request's stream
REQUEST_CANCELLED = -32800
#: key in the ``data`` of a -32000 error the gateway sheds load with: seconds to wait before
#: retrying (HTTP fronts answer such a refusal with 503 and ``Retry-After``)
RETRY_AFTER = "retryAfter"


class RpcError(Exception):
    """A JSON-RPC error to send back, or one received from a backend."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        """The ``error`` member of a JSON-RPC response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    @classmethod
    def from_error(cls, error: Any) -> RpcError:
        """Rebuild from a received ``error`` member, tolerating malformed ones."""
        if isinstance(error, dict):
            code = error.get("code")
            return cls(
                code if isinstance(code, int) else INTERNAL_ERROR,
                str(error.get("message", "error")),
                error.get("data"),
            )
        return cls(INTERNAL_ERROR, f"malformed error from backend: {error!r}")
