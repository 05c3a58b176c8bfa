"""Errors raised by keybroker/, and the one table that maps them to HTTP.

BrokerError
├── BadRequest          malformed request body, path or parameter         400
├── Unauthenticated     no/unknown/expired session, bad or missing token  401
├── AttestationDenied   evidence did not verify, bind or arrive fresh     401
├── PolicyDenied        the resource's policy said no                     401 (or 403, see settings)
├── Forbidden           an admin lacks the role or tenant                 403
├── NotFound            no such resource, policy or admin key             404
├── Conflict            already exists / concurrent change                409
├── Unprocessable       a policy document or key material is invalid      422
└── Unavailable         the KEK provider or database cannot be reached    503

Bodies follow Trustee's RFC 7807 form (`type`, `detail`) plus `code` and, for
denials, the structured `reasons`. Messages never carry key material, tokens
or plaintext; they name fields, checks and public identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_PREFIX = "https://github.com/confidential-containers/kbs/errors/"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    expected: str | None = None
    actual: str | None = None

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "expected": self.expected,
                "actual": self.actual}


class BrokerError(Exception):
    status: int = 500
    kbs_type: str = "PluginInternalError"

    def __init__(self, code: str, message: str, reasons: tuple[Reason, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reasons = reasons

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class BadRequest(BrokerError):
    status, kbs_type = 400, "SerdeError"


class Unauthenticated(BrokerError):
    status, kbs_type = 401, "TokenNotFound"


class AttestationDenied(BrokerError):
    status, kbs_type = 401, "AttestationError"


class PolicyDenied(BrokerError):
    status, kbs_type = 401, "PolicyDeny"


class Forbidden(BrokerError):
    status, kbs_type = 403, "AdminAuth"


class NotFound(BrokerError):
    status, kbs_type = 404, "InvalidRequestPath"


class Conflict(BrokerError):
    status, kbs_type = 409, "Conflict"


class Unprocessable(BrokerError):
    status, kbs_type = 422, "InvalidRequest"


class Unavailable(BrokerError):
    status, kbs_type = 503, "ServiceUnavailable"


def problem(exc: BrokerError, status: int | None = None) -> tuple[int, dict]:
    """(status, body) for an error: the single place where errors become HTTP."""
    body = {"type": TYPE_PREFIX + exc.kbs_type, "detail": exc.message, "code": exc.code}
    if exc.reasons:
        body["reasons"] = [r.as_dict() for r in exc.reasons]
    return (status or exc.status), body


class BrokerUnreachable(Exception):
    """The client side could not talk to a broker at all: connect, TLS, timeout, bad URL or scheme.

    `what` says what failed, `why` the transport's reason, `hint` what to do about it.
    """

    code = "client.unreachable"

    def __init__(self, what: str, why: str, hint: str) -> None:
        super().__init__(f"{what} ({why}); {hint}")
        self.what = what
        self.why = why
        self.hint = hint
        self.message = str(self)
