"""A bureau_auditor never receives a holder's personal data (docs/product.md,
docs/staff.md): not from any GET operation of the live OpenAPI document, not even as the
before and after of an audit event, where the fields are `"withheld"`."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass

import asyncpg
from aiohttp.test_utils import TestClient

from tests.helpers import Till, make_staff, staff_sign_in


@dataclass
class Holder:
    id: str
    card_number: str
    display_name: str
    region: str

    def personal_values(self) -> list[str]:
        return [self.card_number, self.display_name, self.region]


async def enrol_through_the_api(client: TestClient, admin: dict[str, str]) -> Holder:
    """A holder enrolled and then corrected by an admin, so its card number, name and
    region stand in a holder.create and a holder.update event."""
    tag = uuid.uuid4().hex[:10].upper()
    created = await client.post(
        "/v1/holders",
        json={
            "card_number": f"PRIV-{tag}",
            "category": "veteran",
            "display_name": f"Old Name {tag}",
            "region": f"Old Street {tag}",
            "valid_until": "2030-12-31",
            "pin": "735291",
        },
        headers=admin,
    )
    assert created.status == 201, await created.text()
    holder_id = (await created.json())["id"]
    changed = await client.patch(
        f"/v1/holders/{holder_id}",
        json={"display_name": f"New Name {tag}", "region": f"New Street {tag}", "pin": "918273"},
        headers=admin,
    )
    assert changed.status == 200, await changed.text()
    return Holder(holder_id, f"PRIV-{tag}", f"New Name {tag}", f"New Street {tag}")


def answer_text(content_type: str, body: bytes) -> str:
    """Everything an answer says, whatever its format (an XLSX is a zip of XML)."""
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return "\n".join(
                archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
            )
    if "json" in content_type:
        return json.dumps(json.loads(body), ensure_ascii=False)
    return body.decode("utf-8", "replace")


#: Queries worth adding to an operation's plain call: every grouping and format of the
#: reports, the holder events of the audit log.
EXTRA_QUERIES = {
    "/v1/audit-events": ["?entity=holder", "?limit=200"],
    "/v1/reports/discounts": [
        "?group_by=partner,offer,category,month",
        "?group_by=category&format=csv",
        "?group_by=partner,offer,category,month&format=xlsx",
    ],
}


async def test_an_auditor_never_receives_a_holders_personal_data(
    client: TestClient, db: asyncpg.Connection, settings, admin: dict[str, str]
) -> None:
    till = await Till(db, settings).open()
    holders = [await enrol_through_the_api(client, admin) for _ in range(2)]
    # A redemption and its reversal, so the ledger's lists and reports have rows.
    redeemed = await client.post(
        "/v1/redemptions",
        json={"token": till.token, "purchase_amount": 5000, "reference": "R-1"},
        headers={**till.scanner, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert redeemed.status == 201, await redeemed.text()
    redemption_id = (await redeemed.json())["id"]
    reversed_ = await client.post(
        f"/v1/redemptions/{redemption_id}/reversal", json={"reason": "refund"}, headers=admin
    )
    assert reversed_.status == 201
    auditor = await make_staff(db, "bureau_auditor")
    headers = await staff_sign_in(client, auditor.email)

    path_values = {
        "partner_id": till.partner_id,
        "offer_id": till.offer_id,
        "holder_id": holders[0].id,
        "voucher_id": till.voucher_id,
        "redemption_id": redemption_id,
        "staff_id": auditor.id,
        "key_id": "key_unknown",
        "import_id": "imp_unknown",
        "application_id": "apl_unknown",
        "name": "unknown.js",  # static files
        "view": "audit",  # the console page
    }
    document = await (await client.get("/openapi.json")).json()
    calls = []
    for template, operations in document["paths"].items():
        if "get" not in operations:
            continue
        names = re.findall(r"{(\w+)}", template)
        missing = [name for name in names if name not in path_values]
        assert not missing, f"give this walk a value for {missing} ({template})"
        path = template.format(**{name: path_values[name] for name in names})
        calls += [path, *(path + query for query in EXTRA_QUERIES.get(template, []))]

    seen = []
    for path in calls:
        answer = await client.get(path, headers=headers)
        assert answer.status < 500, path
        text = answer_text(answer.headers.get("Content-Type", ""), await answer.read())
        seen.append((path, answer.status))
        for holder in holders:
            for value in holder.personal_values():
                assert value not in text, f"{path} gave an auditor {value!r}"
        assert "$argon2" not in text
    # The walk reached the audit log, and it kept the record of what changed.
    assert ("/v1/audit-events?entity=holder", 200) in seen
    events = await (await client.get("/v1/audit-events?entity=holder", headers=headers)).json()
    update = next(e for e in events["items"] if e["action"] == "holder.update")
    assert update["changes"]["display_name"] == "withheld"
    assert update["changes"]["region"] == "withheld"
    assert update["changes"]["pin"] == "withheld"
    create = next(e for e in events["items"] if e["action"] == "holder.create")
    assert create["changes"]["card_number"] == "withheld"
    assert create["changes"]["category"] == [None, "veteran"]  # not personal: kept


async def test_an_admin_still_reads_the_holder_events_in_full(
    client: TestClient, admin: dict[str, str]
) -> None:
    holder = await enrol_through_the_api(client, admin)
    events = await (
        await client.get(f"/v1/audit-events?entity=holder&entity_id={holder.id}", headers=admin)
    ).json()
    update = next(e for e in events["items"] if e["action"] == "holder.update")
    assert update["changes"]["display_name"][1] == holder.display_name
    assert update["changes"]["region"][1] == holder.region
