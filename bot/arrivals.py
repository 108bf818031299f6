"""Customers arriving through a signed start link: a QR code at a counter, or a personal link.

The /start handler hands the payload to `LinkArrivals.arrived` and answers with `link_reply`.
Whatever the payload, the person is registered as a customer exactly as a plain /start does; an
unusable payload (malformed, tampered with, unknown, someone else's) only adds a polite note.

Location link: each scan + Start is a new visit, recorded through `VisitService.record` (source
LINK, occurred now), so it follows the survey policy like any other visit. Its visit id is made
from the Telegram message that carried /start (`link_visit_id`): a re-delivered update carries
the same message, so it finds the visit already recorded instead of making a second one.

Personal link: binds the person who presses Start to the customer with the link's ref. A ref
already bound to another Telegram user is refused, with the same words as a forged link, so a
forwarded or replayed link reveals nothing. Merge rule, when the person is already a customer
(row P, e.g. from an earlier QR scan) and the ref has a row of its own (row R, from the API or a
CSV import):

- P is kept, because it is the row the person's chat already belongs to; R is folded into it:
  every row that refers to R (visits, surveys, answers, cases — found from the schema's foreign
  keys, so tables added later move too) is moved to P, R is deleted, and P takes R's ref. What
  P does not know yet (language, time zone, name) is taken from R; the earlier `created_at` and
  the later `last_surveyed_at` are kept. Nothing is lost: no survey or answer is deleted.
- If P already has a different ref, the two are not merged (a customer has one ref, and
  choosing one would make the other unreachable for the business): the link is refused and a
  warning is logged, for a person to sort out.

After binding, the customer has started the bot (`started_at`), is reachable again, and every
survey still waiting for them whose due time has passed gets a send job due now (the scheduler
re-checks the policy, e.g. the cooldown, before it sends).

Every binding is one transaction of conditional writes; losing a race with another binding of
the same ref or person rolls it back and decides again from what the winner wrote.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import CursorResult, Executable, case, delete, func, literal, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.clock import Clock
from bot.customers import customer_started, release_waiting_surveys
from bot.links import Links, LocationLink, PersonalLink
from bot.policy import SkipReason, SurveyPolicy
from bot.texts import Texts
from bot.visits import CustomerIn, VisitIn, VisitService
from storage.jobs import JobQueue
from storage.models import Base, Customer, SurveyState, UTCDateTime, VisitSource
from storage.repositories import CustomerRepository, TelegramProfile

log = logging.getLogger(__name__)

#: How often a binding that lost a race is decided again before the link is refused.
_BIND_ATTEMPTS = 3


def link_visit_id(telegram_user_id: int, message_id: int, sent_at: datetime) -> str:
    """The made-up visit id of a QR scan: the /start message that carried it. Message ids are
    unique within a private chat; the message's date keeps them unique should the business
    move to another bot, whose message ids start again."""
    return f"link:{telegram_user_id}:{message_id}:{int(sent_at.timestamp())}"


@dataclass(frozen=True, slots=True)
class VisitNoted:
    """A location link recorded a visit (or found it recorded, for a re-delivered update)."""

    name: str | None  # the first name, when known
    location: str
    created: bool
    #: When the survey will be sent, in the customer's time zone; None when it will not be.
    ask_at: datetime | None
    #: The customer's local date at the scan, so the reply can say "tomorrow".
    today: date
    #: Why no survey will be sent (a `SkipReason` value), when that is the case.
    skip_reason: str | None


@dataclass(frozen=True, slots=True)
class Linked:
    """A personal link bound this person to the business's customer (or already had)."""

    name: str | None
    #: True when the person had not started the bot before.
    first_start: bool
    #: Waiting surveys whose send job is now due.
    released: int


@dataclass(frozen=True, slots=True)
class LinkNotUsable:
    """The payload led nowhere the person may go: registered as by a plain /start."""

    name: str | None
    is_new: bool


LinkOutcome = VisitNoted | Linked | LinkNotUsable


class _LostRace(Exception):
    """A conditional write found the row changed since it was read: decide again."""


class LinkArrivals:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        links: Links,
        visits: VisitService,
        jobs: JobQueue,
        policy: SurveyPolicy,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._links = links
        self._visits = visits
        self._jobs = jobs
        self.policy = policy
        self._clock = clock

    async def arrived(
        self,
        payload: str,
        *,
        telegram_user_id: int,
        message_id: int,
        sent_at: datetime,
        first_name: str | None = None,
        username: str | None = None,
        language: str | None = None,
    ) -> LinkOutcome:
        """Someone pressed Start on a link with this payload (from message `message_id`, sent
        at `sent_at`). Idempotent for a re-delivered update; never raises for a bad payload."""
        profile = TelegramProfile(
            user_id=telegram_user_id,
            first_name=first_name,
            username=username,
            language_code=language,
        )
        target = await self._links.resolve(payload)
        if isinstance(target, LocationLink):
            return await self._visit(
                target, profile, link_visit_id(profile.user_id, message_id, sent_at)
            )
        if isinstance(target, PersonalLink):
            linked = await self._bind(target.ref, profile)
            if linked is not None:
                return linked
        return await self._plain(profile)

    # -- location links -------------------------------------------------------------------

    async def _visit(
        self, target: LocationLink, profile: TelegramProfile, visit_id: str
    ) -> VisitNoted:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            customer, _ = await customer_started(session, profile, now=now, jobs=self._jobs)
            name, zone = _name(customer, profile), self.policy.zone_for(customer.timezone)
        view = await self._visits.record(
            VisitIn(
                visit_id=visit_id,
                customer=CustomerIn(telegram_user_id=profile.user_id),
                occurred_at=now,
                source=VisitSource.LINK,
                location=target.location,
                staff=target.staff,
                service=target.service,
            )
        )
        due = view.survey_due_at if view.survey_state is SurveyState.SCHEDULED else None
        return VisitNoted(
            name=name,
            location=target.location,
            created=view.created,
            ask_at=due.astimezone(zone) if due is not None else None,
            today=now.astimezone(zone).date(),
            skip_reason=view.survey_reason if view.survey_state is SurveyState.SKIPPED else None,
        )

    # -- personal links -------------------------------------------------------------------

    async def _bind(self, ref: str, profile: TelegramProfile) -> Linked | None:
        for _ in range(_BIND_ATTEMPTS):
            try:
                async with self._sessions.begin() as session:
                    return await self._bind_in(session, ref, profile, self._clock.now())
            except (_LostRace, IntegrityError):
                continue
        log.warning("A personal link kept losing races with other bindings; refused it")
        return None

    async def _bind_in(
        self, session: AsyncSession, ref: str, profile: TelegramProfile, now: datetime
    ) -> Linked | None:
        customers = CustomerRepository(session)
        owner = await customers.by_ref(ref)
        person = await customers.by_telegram_id(profile.user_id)
        if owner is not None and owner.telegram_user_id not in (None, profile.user_id):
            log.debug("Personal link refused: its customer is bound to another Telegram user")
            return None
        if person is not None and person.external_ref not in (None, ref):
            log.warning(
                "A customer who already has a ref pressed the personal link of another ref; "
                "not merged (one customer, one ref): the business may have two records of them"
            )
            return None
        first_start = person is None or person.started_at is None
        name = _name(person or owner, profile)

        if owner is None:
            if person is None:
                person, _ = await customers.get_or_create_by_telegram(profile, now=now)
            await _conditional(
                session,
                update(Customer)
                .where(Customer.id == person.id, Customer.external_ref.is_(None))
                .values(external_ref=ref),
            )
            bound_id = person.id
        elif person is None:
            await _conditional(
                session,
                update(Customer)
                .where(Customer.id == owner.id, Customer.telegram_user_id.is_(None))
                .values(telegram_user_id=profile.user_id),
            )
            bound_id = owner.id
        elif person.id == owner.id:
            bound_id = owner.id
        else:
            await _merge(session, source=owner, into=person, ref=ref)
            bound_id = person.id

        await _mark_started(session, bound_id, profile, now)
        released = await release_waiting_surveys(session, self._jobs, bound_id, now)
        return Linked(name=name, first_start=first_start, released=released)

    # -- anything else ----------------------------------------------------------------------

    async def _plain(self, profile: TelegramProfile) -> LinkNotUsable:
        async with self._sessions.begin() as session:
            customer, created = await customer_started(
                session, profile, now=self._clock.now(), jobs=self._jobs
            )
            return LinkNotUsable(name=_name(customer, profile), is_new=created)


# ------------------------------------------------------------------------------- writes


async def _conditional(session: AsyncSession, statement: Executable) -> None:
    """Run a write guarded by a WHERE on the state that was read; no row means a lost race."""
    result = await session.execute(statement.execution_options(synchronize_session=False))
    if not isinstance(result, CursorResult) or result.rowcount != 1:
        raise _LostRace


async def _merge(session: AsyncSession, *, source: Customer, into: Customer, ref: str) -> None:
    """Fold customer `source` (known by `ref`, never started) into `into` (the person's row):
    see the module docstring for the rule."""
    customers = Customer.__table__
    for table in Base.metadata.sorted_tables:
        if table is customers:
            continue
        for foreign_key in table.foreign_keys:
            if foreign_key.column.table is customers:
                column = foreign_key.parent
                await session.execute(
                    update(table).where(column == source.id).values({column.name: into.id})
                )
    # Deleting frees the ref; the guard makes sure nobody bound `source` meanwhile.
    await _conditional(
        session,
        delete(Customer).where(
            Customer.id == source.id,
            Customer.telegram_user_id.is_(None),
            Customer.external_ref == ref,
        ),
    )
    created = literal(source.created_at, UTCDateTime())
    values: dict[str, object] = {
        "external_ref": ref,
        "first_name": func.coalesce(Customer.first_name, source.first_name),
        "language": func.coalesce(Customer.language, source.language),
        "timezone": func.coalesce(Customer.timezone, source.timezone),
        "created_at": case((Customer.created_at > created, created), else_=Customer.created_at),
    }
    if source.last_surveyed_at is not None:
        surveyed = literal(source.last_surveyed_at, UTCDateTime())
        values["last_surveyed_at"] = case(
            (
                or_(Customer.last_surveyed_at.is_(None), Customer.last_surveyed_at < surveyed),
                surveyed,
            ),
            else_=Customer.last_surveyed_at,
        )
    await _conditional(
        session,
        update(Customer)
        .where(Customer.id == into.id, Customer.external_ref.is_(None))
        .values(values),
    )


async def _mark_started(
    session: AsyncSession, customer_id: int, profile: TelegramProfile, now: datetime
) -> None:
    """The bound customer has started the bot: they may be written to from now on. Name and
    @username follow Telegram; a language they chose is kept."""
    values: dict[str, object] = {
        "started_at": func.coalesce(Customer.started_at, literal(now, UTCDateTime())),
        "unreachable_at": None,
        "username": profile.username,
        "language": func.coalesce(Customer.language, profile.language_code),
    }
    if profile.first_name:
        values["first_name"] = profile.first_name
    await session.execute(
        update(Customer)
        .where(Customer.id == customer_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )


def _name(customer: Customer | None, profile: TelegramProfile) -> str | None:
    return profile.first_name or (customer.first_name if customer else None)


# -------------------------------------------------------------------------------- replies


def link_reply(outcome: LinkOutcome, words: Texts, locale: str) -> str:
    """What the customer reads after pressing Start on a link, in their language."""
    name = words.name(outcome.name, locale)
    if isinstance(outcome, VisitNoted):
        if outcome.ask_at is not None:
            return words.render(
                texts.VISIT_NOTED_ASK_AT,
                locale,
                name=name,
                location=outcome.location,
                when=_when(outcome.ask_at, outcome.today, words, locale),
            )
        template = (
            texts.VISIT_NOTED_ASKED_RECENTLY
            if outcome.skip_reason == SkipReason.COOLDOWN
            else texts.VISIT_NOTED
        )
        return words.render(template, locale, name=name, location=outcome.location)
    if isinstance(outcome, Linked):
        template = texts.PERSONAL_LINKED if outcome.first_start else texts.PERSONAL_LINKED_AGAIN
        return words.render(template, locale, name=name)
    greeting = texts.GREETING if outcome.is_new else texts.GREETING_AGAIN
    return "\n\n".join(
        [words.render(greeting, locale, name=name), words.render(texts.LINK_NOT_USABLE, locale)]
    )


def _when(ask_at: datetime, today: date, words: Texts, locale: str) -> str:
    """When the survey comes, as the customer's own clock and calendar say it: e.g. "at about
    14:30", "tomorrow at about 09:00" or "on Monday 12 January at about 09:00"."""
    clock_time = f"{ask_at:%H:%M}"
    days = (ask_at.date() - today).days
    if days <= 0:
        return words.render(texts.WHEN_TODAY, locale, time=clock_time)
    if days == 1:
        return words.render(texts.WHEN_TOMORROW, locale, time=clock_time)
    day = words.weekday_and_date(ask_at, locale)
    return words.render(texts.WHEN_LATER, locale, day=day, time=clock_time)
