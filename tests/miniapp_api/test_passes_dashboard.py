"""People inside per ring, as the gates count them: an exit through an outer gate
leaves every inner ring too."""

from __future__ import annotations

from core.auth import load_actor
from jobs.passes import flush_passages
from services.passes import dashboard
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.services.passes.builders import visitor_body


def _pass(db, client, world, n: int, ring: int) -> tuple[Api, str]:
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(
        f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(n), ring=ring)
    )
    assert resp.get_json()["data"]["status"] == "approved", resp.get_json()
    return api, resp.get_json()["data"]["passes"][0]["token"]


def _walk(db, client, world) -> None:
    t = world.device_tokens
    api, core = _pass(db, client, world, 71, ring=3)
    assert scan(api, t["outer_in"], core)["result"] == "ok"
    assert scan(api, t["core_in"], core)["result"] == "ok"
    assert scan(api, t["outer_out"], core, direction="out")["result"] == "ok"  # leaves the core too
    api, outer = _pass(db, client, world, 72, ring=1)
    assert scan(api, t["outer_in"], outer)["result"] == "ok"


EXPECTED = [
    {"ring": 1, "name": "外围区", "inside": 1},
    {"ring": 2, "name": "管控区", "inside": 0},
    {"ring": 3, "name": "核心区", "inside": 0},
]


def test_leaving_through_an_outer_gate_empties_the_inner_rings(app, db, client, world):
    _walk(db, client, world)
    data = (
        Api(client, world.officer_token).get(f"/passes/events/{world.event.id}/dashboard").get_json()["data"]
    )
    assert data["inside"] == EXPECTED


def test_the_database_count_agrees_with_the_gates(app, db, client, world):
    _walk(db, client, world)
    flush_passages(app)
    officer = load_actor(db, world.officer.person_id)
    assert dashboard.inside_per_ring(db, officer, world.event.id, redis=None) == EXPECTED
