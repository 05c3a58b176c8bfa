"""Merkle tree hashing and proofs as RFC 9162 §2.1 defines them (SHA-256).

    leaf hash   = SHA-256(0x00 ‖ leaf data)
    node hash   = SHA-256(0x01 ‖ left ‖ right)
    MTH(D[n])   splits at k, the largest power of two smaller than n
    MTH({})     = SHA-256("")

Proof generation reads leaf hashes through `LeafSource`: a sequence of 32-byte
hashes (a list, or a lazy view over the broker's database) or a callable
`index -> hash`. Verification needs only hashes and sizes, so auditors run it
offline. Every failed check raises ProofError naming the step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

LeafSource = Sequence[bytes] | Callable[[int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """k: the largest power of two strictly smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _getter(leaves: LeafSource) -> Callable[[int], bytes]:
    return leaves if callable(leaves) else leaves.__getitem__


def _subtree(get: Callable[[int], bytes], lo: int, hi: int) -> bytes:
    """MTH of leaves [lo, hi) (hi > lo), by the recursive definition."""
    if hi - lo == 1:
        return get(lo)
    k = split_point(hi - lo)
    return node_hash(_subtree(get, lo, lo + k), _subtree(get, lo + k, hi))


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (computed with a compact range: O(n) time, O(log n) space)."""
    return CompactRange.of(leaf_hashes).root()


@dataclass(slots=True)
class CompactRange:
    """The frontier of a growing tree: roots of its perfect subtrees, largest first.

    Appending is amortised O(1) hashes and the root is O(log n); the broker can
    keep one per process or rebuild it from stored leaf hashes.
    """

    size: int = 0
    peaks: list[bytes] = field(default_factory=list)

    @classmethod
    def of(cls, leaf_hashes: Iterable[bytes]) -> CompactRange:
        frontier = cls()
        for h in leaf_hashes:
            frontier.append(h)
        return frontier

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; merge equal-sized perfect subtrees (one per trailing 1 bit of size)."""
        _check_hash(leaf, "leaf hash")
        self.peaks.append(leaf)
        carry = self.size
        while carry & 1:
            right = self.peaks.pop()
            self.peaks[-1] = node_hash(self.peaks[-1], right)
            carry >>= 1
        self.size += 1

    def root(self) -> bytes:
        """MTH of everything appended: fold the peaks from the right."""
        if not self.peaks:
            return EMPTY_ROOT
        acc = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            acc = node_hash(peak, acc)
        return acc


# ---------------------------------------------------------------- proof generation

def inclusion_proof(index: int, size: int, leaves: LeafSource) -> list[bytes]:
    """PATH(index, D[size]) from RFC 9162 §2.1.3.1, leaf-to-root order."""
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof: leaf {index} is outside a tree of size {size}")
    get, path = _getter(leaves), []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            path.append(_subtree(get, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree(get, lo, lo + k))
            lo += k
    return path[::-1]


def consistency_proof(old_size: int, new_size: int, leaves: LeafSource) -> list[bytes]:
    """PROOF(old, D[new]) from RFC 9162 §2.1.4.1 (SUBPROOF with b = true), leaf-to-root order."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"consistency proof: sizes {old_size} → {new_size} do not grow")
    if old_size in (0, new_size):
        return []
    get, path = _getter(leaves), []
    lo, hi, m, whole = 0, new_size, old_size, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            path.append(_subtree(get, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree(get, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(_subtree(get, lo, hi))
    return path[::-1]


# ---------------------------------------------------------------- proof verification

def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for `leaf` at `index` (RFC 9162 §2.1.3.2 steps 1–5)."""
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof: leaf {index} is outside a tree of size {size}")
    _check_hash(leaf, "leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "inclusion proof node")
        if sn == 0:
            raise ProofError(f"inclusion proof: {len(proof)} nodes is too long for leaf {index} of {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"inclusion proof: {len(proof)} nodes is too short for leaf {index} of {size}")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> None:
    """Check that `leaf` is entry `index` of the tree of `size` leaves whose root is `expected_root`."""
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise ProofError(f"inclusion proof: leaf {index} does not lead to the root of tree size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the tree (old_size, old_root) is a prefix of (new_size, new_root) (§2.1.4.2)."""
    _check_sizes(old_size, new_size, proof)
    if old_size == new_size or old_size == 0:
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"consistency proof: two different roots for tree size {new_size}")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("consistency proof: the empty tree's root is not SHA-256('')")
        return
    path = list(proof)
    for p in path:
        _check_hash(p, "consistency proof node")
    if old_size & (old_size - 1) == 0:          # step 2: old tree is a perfect subtree
        path.insert(0, old_root)
    fr, sr = _fold_consistency(old_size, new_size, path)
    if fr != old_root:
        raise ProofError(f"consistency proof: does not reproduce the root of tree size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof: does not reproduce the root of tree size {new_size}")


def _check_sizes(old_size: int, new_size: int, proof: Sequence[bytes]) -> None:
    if not 0 <= old_size <= new_size:
        raise ProofError(f"consistency proof: sizes {old_size} → {new_size} do not grow")
    trivial = old_size in (0, new_size)
    if trivial and proof:
        raise ProofError(f"consistency proof: must be empty for sizes {old_size} → {new_size}")
    if not trivial and not proof:
        raise ProofError(f"consistency proof: empty for sizes {old_size} → {new_size}")


def _fold_consistency(old_size: int, new_size: int, path: list[bytes]) -> tuple[bytes, bytes]:
    """Steps 3–7 of RFC 9162 §2.1.4.2: the old and new roots that `path` implies."""
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof: too long for sizes {old_size} → {new_size}")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"consistency proof: too short for sizes {old_size} → {new_size}")
    return fr, sr


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what}: expected {HASH_SIZE} bytes")
