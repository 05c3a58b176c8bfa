from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetAttestationRequest(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: str
    def __init__(self, nonce: _Optional[str] = ...) -> None: ...

class TdxCollateral(_message.Message):
    __slots__ = ("pck_crl_issuer_chain", "root_ca_crl", "pck_crl", "tcb_info_issuer_chain", "tcb_info", "tcb_info_signature", "qe_identity_issuer_chain", "qe_identity", "qe_identity_signature")
    PCK_CRL_ISSUER_CHAIN_FIELD_NUMBER: _ClassVar[int]
    ROOT_CA_CRL_FIELD_NUMBER: _ClassVar[int]
    PCK_CRL_FIELD_NUMBER: _ClassVar[int]
    TCB_INFO_ISSUER_CHAIN_FIELD_NUMBER: _ClassVar[int]
    TCB_INFO_FIELD_NUMBER: _ClassVar[int]
    TCB_INFO_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    QE_IDENTITY_ISSUER_CHAIN_FIELD_NUMBER: _ClassVar[int]
    QE_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    QE_IDENTITY_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    pck_crl_issuer_chain: bytes
    root_ca_crl: bytes
    pck_crl: bytes
    tcb_info_issuer_chain: bytes
    tcb_info: bytes
    tcb_info_signature: bytes
    qe_identity_issuer_chain: bytes
    qe_identity: bytes
    qe_identity_signature: bytes
    def __init__(self, pck_crl_issuer_chain: _Optional[bytes] = ..., root_ca_crl: _Optional[bytes] = ..., pck_crl: _Optional[bytes] = ..., tcb_info_issuer_chain: _Optional[bytes] = ..., tcb_info: _Optional[bytes] = ..., tcb_info_signature: _Optional[bytes] = ..., qe_identity_issuer_chain: _Optional[bytes] = ..., qe_identity: _Optional[bytes] = ..., qe_identity_signature: _Optional[bytes] = ...) -> None: ...

class SnpCrl(_message.Message):
    __slots__ = ("product", "signer", "der")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    DER_FIELD_NUMBER: _ClassVar[int]
    product: str
    signer: str
    der: bytes
    def __init__(self, product: _Optional[str] = ..., signer: _Optional[str] = ..., der: _Optional[bytes] = ...) -> None: ...

class GetAttestationResponse(_message.Message):
    __slots__ = ("tee", "evidence", "certificates", "nonce", "tee_pubkey_jwk", "tls_certificate", "hash_alg", "additional_evidence", "tdx_collateral", "snp_crls")
    TEE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TEE_PUBKEY_JWK_FIELD_NUMBER: _ClassVar[int]
    TLS_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    HASH_ALG_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    TDX_COLLATERAL_FIELD_NUMBER: _ClassVar[int]
    SNP_CRLS_FIELD_NUMBER: _ClassVar[int]
    tee: str
    evidence: bytes
    certificates: _containers.RepeatedScalarFieldContainer[bytes]
    nonce: str
    tee_pubkey_jwk: str
    tls_certificate: bytes
    hash_alg: str
    additional_evidence: str
    tdx_collateral: TdxCollateral
    snp_crls: _containers.RepeatedCompositeFieldContainer[SnpCrl]
    def __init__(self, tee: _Optional[str] = ..., evidence: _Optional[bytes] = ..., certificates: _Optional[_Iterable[bytes]] = ..., nonce: _Optional[str] = ..., tee_pubkey_jwk: _Optional[str] = ..., tls_certificate: _Optional[bytes] = ..., hash_alg: _Optional[str] = ..., additional_evidence: _Optional[str] = ..., tdx_collateral: _Optional[_Union[TdxCollateral, _Mapping]] = ..., snp_crls: _Optional[_Iterable[_Union[SnpCrl, _Mapping]]] = ...) -> None: ...
