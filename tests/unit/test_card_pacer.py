"""Cards take turns in each staff chat: 19 a minute, a digest once a backlog passes a minute."""

from __future__ import annotations

import pytest

from bot.cases import CardPacer


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cards_in_one_chat_are_spaced_and_other_chats_are_not_held_up() -> None:
    clock = Ticking()
    pacer = CardPacer(per_minute=19, monotonic=clock)
    waits = [pacer.reserve(-100, case_id) for case_id in range(5)]
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([60 / 19 * n for n in range(1, 5)])
    assert pacer.reserve(-200, 99) == 0  # another chat goes at once


def test_a_backlog_over_a_minute_gets_one_digest_listing_the_waiting_cases() -> None:
    clock = Ticking()
    pacer = CardPacer(per_minute=19, monotonic=clock)
    digests = []
    for case_id in range(1, 41):  # 40 cards at once: about two minutes of turns
        pacer.reserve(-100, case_id)
        waiting = pacer.digest_due(-100)
        if waiting:
            digests.append(waiting)
    assert len(digests) == 1
    assert digests[0][0] == 2  # the first card went at once; the rest wait
    assert len(digests[0]) >= 19

    # Once the backlog has drained, a new flood gets a digest of its own.
    clock.now += 3600
    pacer.reserve(-100, 100)
    for case_id in range(101, 141):
        pacer.reserve(-100, case_id)
    assert pacer.digest_due(-100) is not None


def test_a_digest_takes_a_turn_of_its_own() -> None:
    clock = Ticking()
    pacer = CardPacer(per_minute=20, monotonic=clock)
    pacer.reserve(-100, 1)
    pacer.take_extra(-100)
    assert pacer.reserve(-100, 2) == pytest.approx(6.0)
