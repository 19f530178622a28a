"""The ledger's Merkle tree against RFC 9162's own definitions: MTH, PATH and PROOF by the
RFC's recursion, the published test vectors of Certificate Transparency's reference
implementations, and hypothesis over random sizes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.merkle import (
    EMPTY_ROOT,
    Node,
    appended,
    consistency_ranges,
    extend,
    inclusion_ranges,
    leaf_hash,
    mth,
    node_hash,
    nodes_for,
    nodes_of,
    nodes_to_recheck,
    range_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

#: The eight leaves of the CT test data, and the root of each prefix of them.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def stored_tree(leaf_hashes: list[bytes]) -> dict[Node, bytes]:
    """Every complete subtree's hash, appended leaf by leaf."""
    hashes: dict[Node, bytes] = {}
    for index, digest in enumerate(leaf_hashes):
        hashes.update(appended(index, digest, hashes.__getitem__))
    return hashes


def proof(ranges: list[tuple[int, int]], hashes: dict[Node, bytes]) -> list[bytes]:
    return [range_hash(start, end, hashes) for start, end in ranges]


def rfc_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1, word for word."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*rfc_path(m, leaves[:k]), mth(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), mth(leaves[:k])]


def rfc_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 §2.1.4.1, word for word."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], b), mth(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def test_hashing_prefixes_leaves_and_nodes_apart() -> None:
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
    assert node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()
    assert mth([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_a_three_leaf_tree_by_hand() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    root = node_hash(node_hash(a, b), c)
    assert mth([a, b, c]) == root
    assert range_hash(0, 3, stored_tree([a, b, c])) == root
    assert proof(inclusion_ranges(2, 3), stored_tree([a, b, c])) == [node_hash(a, b)]
    assert proof(inclusion_ranges(0, 3), stored_tree([a, b, c])) == [b, c]
    assert proof(consistency_ranges(2, 3), stored_tree([a, b, c])) == [c]
    assert proof(consistency_ranges(1, 3), stored_tree([a, b, c])) == [b, c]


@pytest.mark.parametrize("size", range(1, 9))
def test_the_roots_of_certificate_transparency_test_data(size: int) -> None:
    hashes = [leaf_hash(leaf) for leaf in CT_LEAVES[:size]]
    assert mth(hashes).hex() == CT_ROOTS[size - 1]
    assert range_hash(0, size, stored_tree(hashes)).hex() == CT_ROOTS[size - 1]
    assert root_of(iter(hashes)) == (size, bytes.fromhex(CT_ROOTS[size - 1]))


def test_an_inclusion_proof_of_certificate_transparency_test_data() -> None:
    hashes = [leaf_hash(leaf) for leaf in CT_LEAVES]
    path = proof(inclusion_ranges(0, 8), stored_tree(hashes))
    assert [p.hex() for p in path] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


def test_appending_completes_one_node_per_level_it_closes() -> None:
    made = appended(7, b"h" * 32, lambda node: node.level.to_bytes(1, "big") * 32)
    assert [node for node, _ in made] == [Node(0, 7), Node(1, 3), Node(2, 1), Node(3, 0)]
    assert [node for node, _ in appended(8, b"h" * 32, lambda node: b"")] == [Node(0, 8)]


sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=200, deadline=None)
@given(size=sizes, data=st.data())
def test_inclusion_proofs_are_the_rfcs_and_verify(size: int, data: st.DataObject) -> None:
    hashes = [leaf_hash(index.to_bytes(4, "big")) for index in range(size)]
    tree = stored_tree(hashes)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    path = proof(inclusion_ranges(index, size), tree)
    root = mth(hashes)
    assert path == rfc_path(index, hashes)
    assert range_hash(0, size, tree) == root
    assert verify_inclusion(index, size, hashes[index], path, root)
    assert not verify_inclusion(index, size, leaf_hash(b"forged"), path, root)
    if path:
        tampered = [*path[:-1], bytes(32)]
        assert not verify_inclusion(index, size, hashes[index], tampered, root)
        assert not verify_inclusion(index, size, hashes[index], path[:-1], root)
    assert not verify_inclusion(index, size, hashes[index], [*path, bytes(32)], root)


@settings(max_examples=200, deadline=None)
@given(new_size=sizes, data=st.data())
def test_consistency_proofs_are_the_rfcs_and_verify(new_size: int, data: st.DataObject) -> None:
    hashes = [leaf_hash(index.to_bytes(4, "big")) for index in range(new_size)]
    tree = stored_tree(hashes)
    old_size = data.draw(st.integers(min_value=1, max_value=new_size))
    path = proof(consistency_ranges(old_size, new_size), tree)
    old_root, new_root = mth(hashes[:old_size]), mth(hashes)
    assert path == rfc_subproof(old_size, hashes, True)
    assert verify_consistency(old_size, new_size, old_root, new_root, path)
    # A log that rewrote any old entry cannot prove itself consistent with its old root.
    changed = data.draw(st.integers(min_value=0, max_value=old_size - 1))
    rewritten = [*hashes[:changed], leaf_hash(b"rewritten"), *hashes[changed + 1 :]]
    rewritten_path = proof(consistency_ranges(old_size, new_size), stored_tree(rewritten))
    assert not verify_consistency(old_size, new_size, old_root, mth(rewritten), rewritten_path)
    if path:
        assert not verify_consistency(old_size, new_size, old_root, new_root, path[:-1])


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=1, max_value=10**12), data=st.data())
def test_a_proof_at_any_size_needs_only_logarithmically_many_stored_hashes(
    size: int, data: st.DataObject
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=1, max_value=size))
    depth = size.bit_length()
    assert len(nodes_for(inclusion_ranges(index, size))) <= 2 * depth
    assert len(nodes_for(consistency_ranges(old, size))) <= 3 * depth


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=0, max_value=200), more=st.integers(min_value=1, max_value=70))
def test_extending_in_batches_from_the_right_edge_stores_the_same_tree(
    size: int, more: int
) -> None:
    hashes = [leaf_hash(index.to_bytes(4, "big")) for index in range(size + more)]
    before = stored_tree(hashes[:size])
    frontier = {node: before[node] for node in nodes_of(0, size)}
    made = dict(extend(size, hashes[size:], frontier))
    assert {**before, **made} == stored_tree(hashes)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=700), chunk_level=st.integers(0, 6))
def test_a_sweep_over_every_chunk_rechecks_every_stored_hash_and_no_other(
    size: int, chunk_level: int
) -> None:
    tree = stored_tree([leaf_hash(index.to_bytes(4, "big")) for index in range(size)])
    chunk = 1 << chunk_level
    read = set().union(
        *(
            nodes_to_recheck(start, min(start + chunk, size), size)
            for start in range(0, size, chunk)
        )
    )
    assert read == set(tree)
