"""Errors raised by attestation/measure/.

Firmware that does not have the documented layout raises attestation's
ParseError (structure, field, offset). Parameters that cannot describe a launch
(an unknown vCPU type, a negative vCPU count, a kernel command line without a
kernel) raise MeasureError, a ValueError, so the CLI maps both to exit code 2.
"""

from __future__ import annotations


class MeasureError(ValueError):
    """The parameters of a measurement are invalid: `parameter` names which one."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = f"{parameter}: {message}"
