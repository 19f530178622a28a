"""The ledger's Merkle tree, as RFC 9162 (Certificate Transparency 2.0) §2.1 defines it.

    leaf hash = SHA-256(0x00 ‖ leaf)          node hash = SHA-256(0x01 ‖ left ‖ right)

The tree of n leaves splits at k, the largest power of two below n: its left part is the
complete tree of leaves [0, k), its right part the tree of [k, n). So every node of every
tree is either a *complete subtree* — 2^level leaves starting at a multiple of 2^level,
named `Node(level, index)` — or a right edge made of a few of them. The service stores
the complete subtrees' hashes as entries arrive (each append completes at most one per
level); any root or proof is then a handful of stored hashes, never a recomputation.

This module plans which complete subtrees a root or a proof needs (`nodes_of`,
`inclusion_ranges`, `consistency_ranges`), hashes ranges from them (`range_hash`), and
verifies proofs (`verify_inclusion`, `verify_consistency`) exactly as the RFC's §2.1.3.2
and §2.1.4.2 do, so an auditor's few lines of hashlib agree with it. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

HASH_SIZE = 32


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


@dataclass(frozen=True, slots=True)
class Node:
    """The complete subtree of leaves [index·2^level, (index+1)·2^level)."""

    level: int
    index: int

    @property
    def start(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


def split_point(n: int) -> int:
    """k: the largest power of two smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from the RFC's recursive definition: the reference the stored
    tree is checked against, and what a verifier with only the entries computes."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = split_point(len(leaf_hashes))
    return node_hash(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


def root_of(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """(size, MTH) of a stream of leaf hashes in one pass, keeping only the right edge:
    for a verifier reading millions of entries from a file."""
    hashes: dict[Node, bytes] = {}
    size = 0
    for digest in leaf_hashes:
        hashes.update(appended(size, digest, hashes.__getitem__))
        size += 1
        hashes = {node: hashes[node] for node in nodes_of(0, size)}
    return size, range_hash(0, size, hashes)


def nodes_of(start: int, end: int) -> list[Node]:
    """The complete subtrees whose hashes make the tree node of leaves [start, end),
    largest (leftmost) first. `start` must begin a node of some tree: a multiple of the
    largest power of two not above end - start, which every range of a root or a proof is."""
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        assert start % (1 << level) == 0, f"[{start}, {end}) is not a node of any tree"
        nodes.append(Node(level, start >> level))
        start += 1 << level
    return nodes


def range_hash(start: int, end: int, hashes: Mapping[Node, bytes]) -> bytes:
    """MTH of leaves [start, end) from the complete subtrees `nodes_of` names: the
    split puts the largest on the left, so they fold from the right."""
    if start == end:
        return EMPTY_ROOT
    nodes = nodes_of(start, end)
    value = hashes[nodes[-1]]
    for node in reversed(nodes[:-1]):
        value = node_hash(hashes[node], value)
    return value


def appended(
    index: int, digest: bytes, stored: Callable[[Node], bytes]
) -> list[tuple[Node, bytes]]:
    """The complete subtrees that leaf `index` (hash `digest`) completes, itself first:
    each level where the new node is a right child joins its stored left sibling."""
    node, value = Node(0, index), digest
    made = [(node, value)]
    while node.index % 2 == 1:
        value = node_hash(stored(Node(node.level, node.index - 1)), value)
        node = Node(node.level + 1, node.index // 2)
        made.append((node, value))
    return made


def extend(
    size: int, leaf_hashes: Sequence[bytes], frontier: Mapping[Node, bytes]
) -> list[tuple[Node, bytes]]:
    """The complete subtrees that appending `leaf_hashes` to a tree of `size` leaves
    makes, given that tree's right edge (`nodes_of(0, size)`)."""
    known = dict(frontier)
    made: list[tuple[Node, bytes]] = []
    for offset, digest in enumerate(leaf_hashes):
        new = appended(size + offset, digest, known.__getitem__)
        known.update(new)
        made += new
    return made


def nodes_to_recheck(start: int, end: int, size: int) -> set[Node]:
    """The stored complete subtrees a check of leaves [start, end) of a tree of `size`
    leaves reads: every one inside the range, and every one above it (each with both of
    its children), so that a sweep over all ranges rechecks every stored hash once."""
    nodes = set()
    level = 0
    while (1 << level) <= end - start:
        nodes |= {
            Node(level, index)
            for index in range(-(-start >> level), end >> level)  # ceil(start / 2^level)
        }
        level += 1
    while (1 << level) <= size:
        above = Node(level, start >> level)
        if above.end <= size:
            nodes |= {above, Node(level - 1, 2 * above.index), Node(level - 1, 2 * above.index + 1)}
        level += 1
    return nodes


# --- proofs: which ranges, in the RFC's order ---------------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1 as the leaf ranges whose MTH it lists,
    from the leaf's sibling up to the root's other child."""
    if not 0 <= index < size:
        raise ValueError("index must be below size")
    path: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    return path[::-1]


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 as leaf ranges: SUBPROOF(m, D[n], true)."""
    if not 0 < old_size <= new_size:
        raise ValueError("sizes must satisfy 0 < old_size <= new_size")
    proof: list[tuple[int, int]] = []

    def subproof(m: int, start: int, end: int, complete: bool) -> None:
        n = end - start
        if m == n:
            if not complete:
                proof.append((start, end))
            return
        k = split_point(n)
        if m <= k:
            subproof(m, start, start + k, complete)
            proof.append((start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            proof.append((start, start + k))

    subproof(old_size, 0, new_size, True)
    return proof


def nodes_for(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    """Every stored hash the ranges need (one read for a whole proof)."""
    return {node for start, end in ranges for node in nodes_of(start, end)}


# --- verifying, as a client does (RFC 9162 §2.1.3.2 and §2.1.4.2) ---------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root an inclusion proof implies for a leaf hash; ValueError if the proof
    cannot be one of that index in that size."""
    if not 0 <= index < size:
        raise ValueError("index must be below size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("the proof is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    try:
        return root_from_inclusion(index, size, leaf, path) == root
    except ValueError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if not path:
        return False
    proof = list(path)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        proof.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
