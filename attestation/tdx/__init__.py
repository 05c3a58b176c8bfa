"""Intel TDX DCAP quotes (v4 and v5): wire format, PCS collateral, TCB status, verification.

`abi` turns bytes into an immutable Quote (no crypto), `pck` reads the PCK
certificate chain and its SGX extension, `pcs` parses TCB info and QE identity,
`tcb` implements Intel's TCB-level selection and status convergence, and
`verify` runs the whole procedure and produces Claims.
"""
