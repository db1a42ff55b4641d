"""Property: no mutation of a valid pass token verifies (no database)."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from core import signing
from services.passes import checks

KEYRING = signing.KeyRing([signing.generate_key(kid="kid-1")])
TOKEN = signing.encode_token(
    kind=signing.KIND_PASS, object_id=123456, scope_id=3, zone=2, not_before=1_700_000_000,
    not_after=1_900_000_000, ring=KEYRING, holder_tag=b"\x01" * 8,
)  # fmt: skip
ALPHABET = string.digits + string.ascii_uppercase + " $%*+-./:" + string.ascii_lowercase + "\n中"


def _verifies(text: str) -> bool:
    try:
        checks.verify_pass_token(text, KEYRING.verifier, 3, cache=None)
    except checks.Refusal:
        return False
    return True


def test_the_unmutated_token_verifies():
    assert _verifies(TOKEN)


@given(st.data())
@settings(max_examples=400, deadline=None)
def test_no_mutation_of_a_valid_token_verifies(data):
    op = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate", "swap"]))
    text = TOKEN
    i = data.draw(st.integers(0, len(text) - 1))
    if op == "replace":
        c = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != text[i]))
        mutated = text[:i] + c + text[i + 1 :]
    elif op == "insert":
        mutated = text[:i] + data.draw(st.sampled_from(ALPHABET)) + text[i:]
    elif op == "delete":
        mutated = text[:i] + text[i + 1 :]
    elif op == "truncate":
        mutated = text[:i]
    else:
        j = data.draw(st.integers(0, len(text) - 1).filter(lambda j: text[j] != text[i]))
        chars = list(text)
        chars[i], chars[j] = chars[j], chars[i]
        mutated = "".join(chars)
    assert mutated != TOKEN
    assert not _verifies(mutated)
