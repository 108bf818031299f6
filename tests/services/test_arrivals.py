"""Arriving through a link, without Telegram: a scan records a visit and says when the survey
comes; a personal link binds its customer once, merges without losing anything, and releases
the surveys that waited for the customer."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot import texts
from bot.arrivals import LinkArrivals, Linked, LinkNotUsable, VisitNoted, link_reply
from bot.customers import CustomerService
from bot.links import Links
from bot.policy import SurveyPolicy
from bot.texts import Texts
from bot.visits import SEND_SURVEY, CustomerIn, VisitIn, VisitService, send_job_key
from storage.jobs import JobQueue
from storage.models import (
    Answer,
    Customer,
    Job,
    JobState,
    Survey,
    SurveyScale,
    SurveyState,
    Visit,
    VisitSource,
)

NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday; the FakeClock starts here
BUSINESS = "Rice Shop"
WORDS = Texts(BUSINESS)
_message_ids = itertools.count(100)


@pytest.fixture
def policy() -> SurveyPolicy:
    return SurveyPolicy()  # the defaults: 2h delay, quiet 21:00-09:00, UTC, 30d cooldown


@pytest.fixture
def links(session_factory, clock) -> Links:
    return Links(session_factory, clock)


@pytest.fixture
def visits(session_factory, engine, clock, policy) -> VisitService:
    return VisitService(session_factory, JobQueue(engine, clock=clock), policy, clock)


@pytest.fixture
def arrivals(session_factory, engine, clock, policy, links, visits) -> LinkArrivals:
    return LinkArrivals(
        session_factory, links, visits, JobQueue(engine, clock=clock), policy, clock
    )


async def press(
    arrivals: LinkArrivals,
    payload: str,
    user_id: int = 1001,
    name: str = "Anna",
    message_id: int | None = None,
):
    return await arrivals.arrived(
        payload,
        telegram_user_id=user_id,
        message_id=next(_message_ids) if message_id is None else message_id,
        sent_at=NOON,
        first_name=name,
        username=name.lower(),
        language="en",
    )


async def api_visit(visits: VisitService, visit_id: str, ref: str, at: datetime) -> None:
    await visits.record(
        VisitIn(
            visit_id=visit_id,
            customer=CustomerIn(ref=ref, name="Anna Smith", timezone="Europe/Berlin"),
            occurred_at=at,
            source=VisitSource.API,
            location="Harbour",
        )
    )


async def count(session, model) -> int:
    return await session.scalar(select(func.count()).select_from(model))


# ------------------------------------------------------------------------- location links


async def test_a_scan_records_a_visit_and_says_when_the_survey_comes(
    arrivals, links, session
) -> None:
    payload = await links.location_payload("Downtown", staff="Li", service="Sushi")
    outcome = await press(arrivals, payload)

    assert outcome == VisitNoted(
        name="Anna",
        location="Downtown",
        created=True,
        ask_at=NOON + timedelta(hours=2),
        today=date(2026, 1, 5),
        skip_reason=None,
    )
    assert link_reply(outcome, WORDS, "en") == (
        "Thank you, Anna! I will ask you about your visit to Downtown at about 14:00."
    )
    visit = await session.scalar(select(Visit))
    assert (visit.location, visit.staff, visit.service) == ("Downtown", "Li", "Sushi")
    assert visit.source is VisitSource.LINK
    assert visit.occurred_at == NOON
    customer = await session.get(Customer, visit.customer_id)
    assert customer.telegram_user_id == 1001
    assert customer.started_at == NOON


async def test_the_same_message_twice_records_one_visit(arrivals, links, session) -> None:
    payload = await links.location_payload("Downtown")
    first = await press(arrivals, payload, message_id=7)
    again = await press(arrivals, payload, message_id=7)
    assert first.created and not again.created
    assert again.ask_at == first.ask_at
    assert await count(session, Visit) == 1


async def test_every_scan_is_a_new_visit_and_the_cooldown_is_told_kindly(
    arrivals, links, session
) -> None:
    payload = await links.location_payload("Downtown")
    await press(arrivals, payload)
    second = await press(arrivals, payload)
    assert second.created
    assert second.ask_at is None
    assert second.skip_reason == "cooldown"
    assert link_reply(second, WORDS, "en") == texts.render(
        texts.VISIT_NOTED_ASKED_RECENTLY, name="Anna", location="Downtown"
    )
    assert await count(session, Visit) == 2


async def test_the_time_is_told_on_the_customers_own_clock(arrivals, links, session, clock) -> None:
    payload = await links.location_payload("Downtown")
    await press(arrivals, payload)  # registers Anna
    await session.execute(update(Customer).values(timezone="America/New_York"))
    await session.commit()
    clock.advance(days=40)  # past the cooldown
    outcome = await press(arrivals, payload)
    # 12:00 UTC is 07:00 in New York; two hours later is 09:00 there.
    assert outcome.ask_at.utcoffset() == timedelta(hours=-5)
    assert link_reply(outcome, WORDS, "en").endswith("at about 09:00.")


async def test_an_evening_scan_is_asked_tomorrow_in_the_business_time_zone(
    session_factory, engine, clock, links
) -> None:
    tokyo = SurveyPolicy(time_zone=ZoneInfo("Asia/Tokyo"))
    arrivals = LinkArrivals(
        session_factory,
        links,
        VisitService(session_factory, JobQueue(engine, clock=clock), tokyo, clock),
        JobQueue(engine, clock=clock),
        tokyo,
        clock,
    )
    # 12:00 UTC is 21:00 in Tokyo: two hours later is quiet, so 09:00 the next morning.
    outcome = await press(arrivals, await links.location_payload("Ginza"))
    assert outcome.today == date(2026, 1, 5)
    assert link_reply(outcome, WORDS, "en") == (
        "Thank you, Anna! I will ask you about your visit to Ginza tomorrow at about 09:00."
    )


def test_a_survey_days_away_is_told_with_its_day() -> None:
    outcome = VisitNoted(
        name="Li",
        location="Harbour",
        created=True,
        ask_at=datetime(2026, 1, 8, 9, 0, tzinfo=UTC),
        today=date(2026, 1, 5),
        skip_reason=None,
    )
    assert link_reply(outcome, WORDS, "en") == (
        "Thank you, Li! I will ask you about your visit to Harbour on Thursday 8 January "
        "at about 09:00."
    )


async def test_an_opted_out_customer_is_thanked_without_a_promise(arrivals, links, session) -> None:
    payload = await links.location_payload("Downtown")
    await press(arrivals, payload)
    await session.execute(update(Customer).values(opted_out_at=NOON))
    await session.commit()
    outcome = await press(arrivals, payload)
    assert outcome.skip_reason == "opted_out"
    assert link_reply(outcome, WORDS, "en") == "Thank you, Anna! Your visit to Downtown is noted."


async def test_pressing_start_makes_a_blocked_customer_reachable_again(
    arrivals, links, session
) -> None:
    payload = await links.location_payload("Downtown")
    await press(arrivals, payload, message_id=1)
    await session.execute(update(Customer).values(unreachable_at=NOON))
    await session.execute(update(Survey).values(state=SurveyState.SKIPPED))  # no cooldown
    await session.commit()
    outcome = await press(arrivals, payload, message_id=2)
    assert outcome.ask_at is not None
    customer = await session.scalar(select(Customer).execution_options(populate_existing=True))
    assert customer.unreachable_at is None


@pytest.mark.parametrize("payload", ["a", "", "AQAAAAEPXB_1i4zPU-LK", "x" * 64])
async def test_an_unusable_payload_is_a_plain_start_with_a_note(
    arrivals, session, payload: str
) -> None:
    outcome = await press(arrivals, payload, name="Omar")
    assert outcome == LinkNotUsable(name="Omar", is_new=True)
    reply = link_reply(outcome, WORDS, "en")
    assert reply.startswith("Hello, Omar! Thank you for starting me.")
    assert reply.endswith(texts.render(texts.LINK_NOT_USABLE, business=BUSINESS))
    assert await count(session, Customer) == 1
    assert await count(session, Visit) == 0
    again = await press(arrivals, payload, name="Omar")
    assert link_reply(again, WORDS, "en").startswith("Welcome back, Omar!")


# ------------------------------------------------------------------------- personal links


async def send_job(session, survey_id: int) -> Job:
    return await session.scalar(
        select(Job)
        .where(Job.dedupe_key == send_job_key(survey_id))
        .execution_options(populate_existing=True)
    )


async def test_a_personal_link_binds_the_customer_and_releases_due_surveys(
    arrivals, links, visits, session
) -> None:
    await api_visit(visits, "v-1", "c-42", NOON - timedelta(hours=5))  # due at 09:00 UTC
    survey = await session.scalar(select(Survey))
    # The delivery worker ran the job while Anna could not be reached and let it finish.
    await session.execute(
        update(Job)
        .where(Job.dedupe_key == send_job_key(survey.id))
        .values(state=JobState.DONE, available_at=None, attempts=1, last_error="never started")
    )
    await session.commit()

    outcome = await press(arrivals, await links.personal_payload("c-42"))

    assert outcome == Linked(name="Anna", first_start=True, released=1)
    assert link_reply(outcome, WORDS, "en").startswith("Hello, Anna! Thank you for starting me.")
    customer = await session.scalar(
        select(Customer)
        .where(Customer.external_ref == "c-42")
        .execution_options(populate_existing=True)
    )
    assert customer.telegram_user_id == 1001
    assert customer.started_at == NOON
    assert customer.first_name == "Anna"  # as Telegram says
    assert customer.timezone == "Europe/Berlin"  # as the business said
    job = await send_job(session, survey.id)
    assert (job.kind, job.state, job.available_at, job.attempts) == (
        SEND_SURVEY,
        JobState.PENDING,
        NOON,
        0,
    )
    assert job.last_error is None
    assert await count(session, Customer) == 1


async def test_a_survey_not_yet_due_keeps_its_time_and_an_expired_one_stays_closed(
    arrivals, links, visits, session
) -> None:
    await api_visit(visits, "v-old", "c-42", NOON - timedelta(days=40))  # past its expiry
    await api_visit(visits, "v-new", "c-42", NOON + timedelta(hours=1))  # due at 15:00
    surveys = (await session.scalars(select(Survey).order_by(Survey.due_at))).all()
    assert [survey.state for survey in surveys] == [SurveyState.SCHEDULED] * 2

    outcome = await press(arrivals, await links.personal_payload("c-42"))

    assert outcome.released == 0
    for survey in surveys:
        assert (await send_job(session, survey.id)).available_at == survey.due_at


async def test_pressing_ones_own_link_again_is_welcomed_back(arrivals, links, session) -> None:
    payload = await links.personal_payload("c-42")
    first = await press(arrivals, payload)
    again = await press(arrivals, payload)
    assert first.first_start and not again.first_start
    assert link_reply(again, WORDS, "en").startswith("Welcome back, Anna! You are all set")
    assert await count(session, Customer) == 1


async def test_someone_elses_personal_link_is_refused_without_details(
    arrivals, links, visits, session
) -> None:
    await api_visit(visits, "v-1", "c-42", NOON - timedelta(hours=5))
    payload = await links.personal_payload("c-42")
    await press(arrivals, payload, user_id=1001, name="Anna")

    replayed = await press(arrivals, payload, user_id=2002, name="Bob")
    forged = await press(arrivals, payload[:-1] + "A", user_id=3003, name="Bob")

    assert replayed == LinkNotUsable(name="Bob", is_new=True)
    reply = link_reply(replayed, WORDS, "en")
    assert reply == link_reply(forged, WORDS, "en")
    assert "Anna" not in reply and "c-42" not in reply and "Harbour" not in reply
    owner = await session.scalar(select(Customer).where(Customer.external_ref == "c-42"))
    assert owner.telegram_user_id == 1001
    bob = await session.scalar(select(Customer).where(Customer.telegram_user_id == 2002))
    assert bob.external_ref is None
    assert await count(session, Visit) == 1


async def test_two_people_pressing_one_personal_link_at_once_bind_it_once(
    arrivals, links, visits, session
) -> None:
    await api_visit(visits, "v-1", "c-42", NOON - timedelta(hours=5))
    payload = await links.personal_payload("c-42")
    outcomes = await asyncio.gather(
        *(press(arrivals, payload, user_id=5000 + n, name=f"P{n}") for n in range(4))
    )
    winners = [outcome for outcome in outcomes if isinstance(outcome, Linked)]
    assert len(winners) == 1
    owner = await session.scalar(select(Customer).where(Customer.external_ref == "c-42"))
    assert owner.first_name == winners[0].name
    assert await count(session, Customer) == 4


async def test_a_ref_not_known_yet_is_given_to_the_person(arrivals, links, session) -> None:
    outcome = await press(arrivals, await links.personal_payload("c-new"))
    assert outcome == Linked(name="Anna", first_start=True, released=0)
    customer = await session.scalar(select(Customer))
    assert (customer.external_ref, customer.telegram_user_id) == ("c-new", 1001)


async def test_a_known_person_and_a_ref_merge_without_losing_anything(
    arrivals, links, visits, session, clock
) -> None:
    # Two days ago the business reported an old visit under its ref, and she had answered it.
    clock.set(NOON - timedelta(days=2))
    await api_visit(visits, "v-ref", "c-42", NOON - timedelta(days=45))
    ref_row = await session.scalar(select(Customer).where(Customer.external_ref == "c-42"))
    ref_survey = await session.scalar(select(Survey).where(Survey.customer_id == ref_row.id))
    ref_survey.state = SurveyState.ANSWERED
    session.add(
        Answer(
            survey_id=ref_survey.id,
            customer_id=ref_row.id,
            scale=SurveyScale.CSAT,
            score=5,
            created_at=NOON - timedelta(days=2),
        )
    )
    await session.commit()
    # An hour ago Anna scanned a QR code: her own row, a visit and a survey due at 13:00.
    clock.set(NOON - timedelta(hours=1))
    await press(arrivals, await links.location_payload("Downtown"))
    clock.set(NOON)

    outcome = await press(arrivals, await links.personal_payload("c-42"))

    assert outcome == Linked(name="Anna", first_start=False, released=0)
    session.expire_all()
    [merged] = (await session.scalars(select(Customer))).all()
    assert (merged.external_ref, merged.telegram_user_id) == ("c-42", 1001)
    assert merged.timezone == "Europe/Berlin"  # learnt from the business's row
    assert merged.created_at == NOON - timedelta(days=2)  # the earlier of the two
    assert await count(session, Visit) == 2
    assert await count(session, Survey) == 2
    assert set(await session.scalars(select(Visit.customer_id))) == {merged.id}
    assert set(await session.scalars(select(Survey.customer_id))) == {merged.id}
    answer = await session.scalar(select(Answer))
    assert (answer.customer_id, answer.score) == (merged.id, 5)


async def test_a_person_with_another_ref_is_not_merged(arrivals, links, visits, session) -> None:
    await press(arrivals, await links.personal_payload("c-1"))
    await api_visit(visits, "v-2", "c-2", NOON - timedelta(hours=5))
    outcome = await press(arrivals, await links.personal_payload("c-2"))
    assert isinstance(outcome, LinkNotUsable)
    refs = dict(
        (await session.execute(select(Customer.external_ref, Customer.telegram_user_id))).all()
    )
    assert refs == {"c-1": 1001, "c-2": None}


async def test_a_plain_start_releases_the_surveys_that_waited_for_it(
    session_factory, engine, clock, visits, session
) -> None:
    """A customer the business knew by Telegram id, before they had started the bot."""
    await visits.record(
        VisitIn(
            visit_id="v-1",
            customer=CustomerIn(ref="c-7", telegram_user_id=777),
            occurred_at=NOON - timedelta(hours=5),
            source=VisitSource.API,
        )
    )
    survey = await session.scalar(select(Survey))
    await session.execute(
        update(Job)
        .where(Job.dedupe_key == send_job_key(survey.id))
        .values(state=JobState.DONE, available_at=None)
    )
    await session.commit()

    customers = CustomerService(session_factory, clock, JobQueue(engine, clock=clock))
    arrival = await customers.arrived(
        telegram_user_id=777, first_name="Li", username=None, language="en"
    )

    assert not arrival.is_new
    job = await send_job(session, survey.id)
    assert (job.state, job.available_at) == (JobState.PENDING, NOON)
    customer = await session.get(Customer, arrival.customer_id)
    assert customer.started_at == NOON
