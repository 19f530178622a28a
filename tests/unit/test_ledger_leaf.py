"""The leaf text (docs/ledger.md): an offline redemption's facts are added only when set,
so every leaf written before offline tills existed stays the same text and hash."""

from datetime import UTC, datetime

from service.domain.ledger import LedgerRecord, leaf_of
from service.domain.statement import Tally, _stated

AT = datetime(2026, 3, 2, 1, 14, 7, 123456, tzinfo=UTC)


def record(**offline: object) -> LedgerRecord:
    return LedgerRecord(
        id="rdm_1",
        kind="redemption",
        redemption_id=None,
        voucher_id="vch_1",
        offer_id="ofr_1",
        partner_id="ptn_1",
        holder_category="veteran",
        purchase_amount=12800,
        discount_amount=1280,
        created_at=AT,
        **offline,  # type: ignore[arg-type]
    )


def test_a_leaf_without_offline_facts_is_the_text_it_always_was() -> None:
    assert leaf_of(41, record()) == (
        '{"created_at":"2026-03-02T01:14:07.123456Z","currency":"CNY","discount_amount":1280,'
        '"holder_category":"veteran","id":"rdm_1","index":41,"kind":"redemption",'
        '"offer_id":"ofr_1","partner_id":"ptn_1","purchase_amount":12800,"voucher_id":"vch_1"}'
    )


def test_an_offline_redemption_s_leaf_carries_when_it_was_made_and_its_conflict() -> None:
    made = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    leaf = leaf_of(41, record(offline_at=made, conflict="voucher_used_up"))
    assert '"offline_at":"2026-03-01T23:00:00.000000Z"' in leaf
    assert '"conflict":"voucher_used_up"' in leaf
    assert '"offline_at"' in leaf_of(41, record(offline_at=made))
    assert '"conflict"' not in leaf_of(41, record(offline_at=made))


def test_the_statement_counts_offline_and_conflicts_from_the_leaves() -> None:
    tally = Tally()
    tally.add({"kind": "redemption", "purchase_amount": 10, "discount_amount": 1})
    tally.add(
        {"kind": "redemption", "purchase_amount": 10, "discount_amount": 1, "offline_at": "…"}
    )
    tally.add(
        {
            "kind": "redemption",
            "purchase_amount": 10,
            "discount_amount": 1,
            "offline_at": "…",
            "conflict": "voucher_used_up",
        }
    )
    tally.add({"kind": "reversal", "purchase_amount": 10, "discount_amount": 1})
    assert tally.figures() == {
        "redemptions": 3,
        "reversals": 1,
        "purchase_total": 20,
        "discount_total": 2,
        "offline": 2,
        "conflicts": 1,
    }


def test_a_statement_signed_before_offline_tills_is_verified_on_its_four_figures() -> None:
    old = {"redemptions": 1, "reversals": 0, "purchase_total": 1, "discount_total": 1}
    assert _stated(old) == ("redemptions", "reversals", "purchase_total", "discount_total")
    assert _stated({**old, "offline": 0, "conflicts": 0})[-2:] == ("offline", "conflicts")
