"""Cards take turns in each staff chat, 18 a minute; a digest for each minute of backlog."""

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
    pacer = CardPacer(per_minute=18, monotonic=clock)
    waits = [pacer.reserve(-100, case_id) for case_id in range(5)]
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([60 / 18 * n for n in range(1, 5)])
    assert pacer.reserve(-200, 99) == 0  # another chat goes at once


def test_a_backlog_over_a_minute_gets_a_digest_listing_the_waiting_cases() -> None:
    clock = Ticking()
    pacer = CardPacer(per_minute=18, monotonic=clock)
    digests = []
    for case_id in range(1, 41):  # 40 cards at once: more than two minutes of turns
        pacer.reserve(-100, case_id)
        waiting = pacer.digest_due(-100)
        if waiting:
            digests.append(waiting)
    # The first card went at once; the next 18 are the first minute's backlog, listed once;
    # the later ones wait for a further digest, which comes only ten minutes on.
    assert digests == [list(range(2, 20))]
    assert pacer.digest_due(-100) is None
    for case_id in range(41, 200):
        pacer.reserve(-100, case_id)
    clock.now += 601
    later = pacer.digest_due(-100)
    assert later is not None and later[0] > 19 and 2 not in later

    # Once the backlog has drained, a new flood is listed again from its start.
    clock.now += 3600
    pacer.reserve(-100, 100)
    again = []
    for case_id in range(101, 120):
        pacer.reserve(-100, case_id)
        again.append(pacer.digest_due(-100))
    assert [listed for listed in again if listed] == [list(range(101, 119))]


def test_a_digest_takes_a_turn_of_its_own() -> None:
    clock = Ticking()
    pacer = CardPacer(per_minute=20, monotonic=clock)
    pacer.reserve(-100, 1)
    pacer.take_extra(-100)
    assert pacer.reserve(-100, 2) == pytest.approx(6.0)
