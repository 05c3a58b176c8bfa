"""Session and attestation ids sort by creation time (keybroker/db/ids.py) and keep 80 random bits."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from keybroker.db.ids import time_ordered_id
from keybroker.kbs.messages import PROTOCOL_VERSIONS, KbsRequest
from keybroker.kbs.sessions import new_session


def test_ids_sort_in_creation_order_across_milliseconds():
    ids = []
    for _ in range(5):
        ids.append(time_ordered_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_id_is_32_hex_digits_whose_first_48_bits_are_the_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    value = time_ordered_id()
    after = time.time_ns() // 1_000_000
    assert len(value) == 32 and int(value, 16) >= 0 and value == value.lower()
    assert before <= int(value[:12], 16) <= after


def test_ids_made_in_the_same_millisecond_differ_in_their_80_random_bits():
    ids = [time_ordered_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert len({i[12:] for i in ids}) == len(ids)


def test_new_sessions_get_time_ordered_ids():
    request = KbsRequest.model_validate({"version": PROTOCOL_VERSIONS[0], "tee": "tdx"})
    now = datetime.now(timezone.utc)
    rows = []
    for _ in range(3):
        rows.append(new_session(request, now, timedelta(minutes=5))[0])
        time.sleep(0.002)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
