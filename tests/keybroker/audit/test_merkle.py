"""RFC 9162 §2.1 Merkle hashing and proofs: known answers by hand, and properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keybroker.audit import merkle
from keybroker.audit.errors import ProofError


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return H(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return H(b"\x01" + left + right)


LEAVES = [leaf(bytes([i])) for i in range(8)]
a, b, c, d, e, f, g, h = LEAVES


# ------------------------------------------------------------------ known answers


def test_hashes_have_the_rfc_prefixes():
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.root([]) == hashlib.sha256(b"").digest()
    assert merkle.root([a]) == a


def test_split_point_is_the_largest_power_of_two_below_n():
    assert [merkle.split_point(n) for n in range(2, 10)] == [1, 2, 2, 4, 4, 4, 4, 8]


def test_roots_of_small_trees_by_hand():
    assert merkle.root([a, b]) == node(a, b)
    assert merkle.root([a, b, c]) == node(node(a, b), c)
    # 5 leaves: k = 4 → (abcd) (e)
    assert merkle.root([a, b, c, d, e]) == node(node(node(a, b), node(c, d)), e)
    # 7 leaves: k = 4 → (abcd) ((ef) g)
    assert merkle.root(LEAVES[:7]) == node(node(node(a, b), node(c, d)), node(node(e, f), g))


def test_known_rfc6962_test_vector_root():
    # The well-known 8-leaf vector from RFC 6962-era test suites (leaves "", 0x00, 0x10, …).
    data = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57", b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"]
    expected = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert merkle.root([merkle.leaf_hash(x) for x in data]).hex() == expected


def test_inclusion_paths_by_hand():
    # tree of 7: leaf 2 (c) → [d, (ab), ((ef)g)]
    assert merkle.inclusion_proof(2, 7, LEAVES) == [d, node(a, b), node(node(e, f), g)]
    # leaf 6 (g) of 7 → [(ef), (abcd)]
    assert merkle.inclusion_proof(6, 7, LEAVES) == [node(e, f), node(node(a, b), node(c, d))]
    assert merkle.inclusion_proof(0, 1, LEAVES) == []


def test_consistency_proofs_by_hand():
    # RFC 9162 §2.1.5 example tree of 7 leaves.
    assert merkle.consistency_proof(3, 7, LEAVES) == [c, d, node(a, b), node(node(e, f), g)]
    assert merkle.consistency_proof(4, 7, LEAVES) == [node(node(e, f), g)]
    assert merkle.consistency_proof(6, 7, LEAVES) == [node(e, f), g, node(node(a, b), node(c, d))]
    assert merkle.consistency_proof(7, 7, LEAVES) == []


def test_compact_range_matches_root_at_every_size():
    frontier = merkle.CompactRange()
    assert frontier.root() == merkle.EMPTY_ROOT
    for n, h in enumerate(LEAVES * 3, start=1):
        frontier.append(h)
        assert frontier.size == n
        assert len(frontier.peaks) == bin(n).count("1")
        assert frontier.root() == merkle.root((LEAVES * 3)[:n])


def test_leaf_source_may_be_a_callable():
    assert merkle.inclusion_proof(3, 8, LEAVES.__getitem__) == merkle.inclusion_proof(3, 8, LEAVES)


# ------------------------------------------------------------------ properties

sizes = st.integers(min_value=1, max_value=70)


def tree(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def reference_root(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = merkle.split_point(len(hashes))
    return node(reference_root(hashes[:k]), reference_root(hashes[k:]))


@settings(max_examples=150, deadline=None)
@given(sizes, st.data())
def test_every_inclusion_proof_verifies(n, data):
    hashes = tree(n)
    assert merkle.root(hashes) == reference_root(hashes)
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, n, hashes)
    merkle.verify_inclusion(index, n, hashes[index], proof, merkle.root(hashes))


@settings(max_examples=150, deadline=None)
@given(sizes, st.data())
def test_every_consistency_proof_verifies(n, data):
    hashes = tree(n)
    m = data.draw(st.integers(0, n))
    proof = merkle.consistency_proof(m, n, hashes)
    merkle.verify_consistency(m, n, merkle.root(hashes[:m]), merkle.root(hashes), proof)


def flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 70), st.data())
def test_any_flipped_hash_breaks_an_inclusion_proof(n, data):
    hashes = tree(n)
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, n, hashes)
    root = merkle.root(hashes)
    target = data.draw(st.integers(-2, len(proof) - 1))   # -2: leaf, -1: root, else a proof node
    bit = data.draw(st.integers(0, 255))
    leaf_h, root_h = hashes[index], root
    if target == -2:
        leaf_h = flip(leaf_h, bit)
    elif target == -1:
        root_h = flip(root_h, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, n, leaf_h, proof, root_h)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 70), st.data())
def test_any_flipped_hash_breaks_a_consistency_proof(n, data):
    hashes = tree(n)
    m = data.draw(st.integers(1, n - 1))
    proof = merkle.consistency_proof(m, n, hashes)
    roots = [merkle.root(hashes[:m]), merkle.root(hashes)]
    target = data.draw(st.integers(-2, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    if target < 0:
        roots[target + 2] = flip(roots[target + 2], bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, roots[0], roots[1], proof)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 40), st.data())
def test_a_proof_for_another_index_or_size_fails(n, data):
    hashes = tree(n)
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, n, hashes)
    other = data.draw(st.integers(0, n - 1).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(other, n, hashes[index], proof, merkle.root(hashes))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, n, hashes[index], proof + [hashes[0]], merkle.root(hashes))


def test_malformed_requests_raise_proof_error():
    with pytest.raises(ProofError, match="outside"):
        merkle.inclusion_proof(3, 3, LEAVES)
    with pytest.raises(ProofError, match="outside"):
        merkle.verify_inclusion(0, 0, a, [], a)
    with pytest.raises(ProofError, match="do not grow"):
        merkle.consistency_proof(5, 4, LEAVES)
    with pytest.raises(ProofError, match="empty"):
        merkle.verify_consistency(3, 7, a, b, [])
    with pytest.raises(ProofError, match="must be empty"):
        merkle.verify_consistency(7, 7, a, a, [b])
    with pytest.raises(ProofError, match="different roots"):
        merkle.verify_consistency(7, 7, a, b, [])
    with pytest.raises(ProofError, match="32 bytes"):
        merkle.verify_inclusion(0, 2, a, [b"short"], a)
