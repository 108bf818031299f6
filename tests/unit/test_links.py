"""The start-payload codec: short, in Telegram's alphabet, and impossible to bend without a key."""

from __future__ import annotations

import base64
import re
import string

import pytest

from bot.links import PAYLOAD_LENGTH, LinkSigner, SignedTarget, link_url
from storage.models import LinkKind

ALPHABET = string.ascii_letters + string.digits + "_-"
TELEGRAM_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
SECRET = "correct horse battery staple"


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(SECRET)


@pytest.mark.parametrize("kind", list(LinkKind))
@pytest.mark.parametrize("target_id", [1, 2, 255, 256, 65_537, 2**31 - 1, 2**32 - 1])
def test_a_payload_round_trips_and_fits_telegram(
    signer: LinkSigner, kind: LinkKind, target_id: int
) -> None:
    payload = signer.sign(kind, target_id)
    assert TELEGRAM_PAYLOAD.fullmatch(payload)
    assert len(payload) == PAYLOAD_LENGTH <= 64
    assert signer.verify(payload) == SignedTarget(kind, target_id)


def test_signing_is_deterministic_and_ids_and_kinds_differ(signer: LinkSigner) -> None:
    assert signer.sign(LinkKind.LOCATION, 7) == signer.sign(LinkKind.LOCATION, 7)
    payloads = {signer.sign(kind, n) for kind in LinkKind for n in range(1, 51)}
    assert len(payloads) == 2 * 50


def test_changing_any_character_is_rejected(signer: LinkSigner) -> None:
    for kind in LinkKind:
        payload = signer.sign(kind, 12_345)
        for position, original in enumerate(payload):
            for replacement in ALPHABET:
                if replacement == original:
                    continue
                tampered = payload[:position] + replacement + payload[position + 1 :]
                assert signer.verify(tampered) is None, (position, replacement)


def test_a_location_payload_cannot_become_a_personal_one(signer: LinkSigner) -> None:
    payload = signer.sign(LinkKind.LOCATION, 42)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    assert raw[0] == 1  # the kind byte of a location link
    raw[0] = 2  # the kind byte of a personal link, the id and tag left as they were
    personal = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert len(personal) == PAYLOAD_LENGTH
    assert signer.verify(personal) is None
    # Nor can the id be moved to another target, even by one.
    raw[0], raw[4] = 1, raw[4] ^ 1
    assert signer.verify(base64.urlsafe_b64encode(bytes(raw)).decode()) is None


def test_another_secret_rejects_every_payload(signer: LinkSigner) -> None:
    rotated = LinkSigner(SECRET + " rotated")
    for kind in LinkKind:
        for target_id in (1, 99, 2**31 - 1):
            assert rotated.verify(signer.sign(kind, target_id)) is None
            assert signer.verify(rotated.sign(kind, target_id)) is None


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "a",
        "start",
        "A" * 19,
        "A" * 21,
        "A" * 64,
        "AQAAAAEPXB_1i4zPU-L=",  # padding is not in Telegram's alphabet
        "AQAAAAEPXB_1i4zPU-L ",
        "AQAAAAEPXB_1i4zPU-Lж",
        "AQAAAAEPXB+1i4zPU/LK",  # standard base64, not the URL-safe alphabet
        "../../../etc/passwd",
        "AAAAAAAAAAAAAAAAAAAA",  # kind 0, id 0
    ],
)
def test_malformed_payloads_are_refused_quietly(signer: LinkSigner, payload: str) -> None:
    assert signer.verify(payload) is None


def test_a_payload_with_an_unknown_kind_byte_is_refused(signer: LinkSigner) -> None:
    """Even correctly signed: a kind byte this version does not know is not guessed at."""
    body = bytes([9]) + (5).to_bytes(4, "big")
    payload = base64.urlsafe_b64encode(body + signer._tag(body)).decode()
    assert signer.verify(payload) is None


@pytest.mark.parametrize("target_id", [0, -1, 2**32])
def test_ids_that_do_not_fit_are_refused_when_signing(signer: LinkSigner, target_id: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        signer.sign(LinkKind.LOCATION, target_id)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        LinkSigner("")


def test_link_url_is_a_telegram_start_link() -> None:
    assert link_url("@rice_shop_bot", "AbC_-1") == "https://t.me/rice_shop_bot?start=AbC_-1"
