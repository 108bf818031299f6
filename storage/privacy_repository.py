"""The queries behind a customer's /stop, /start (resuming) and /forget (see `bot.privacy`).

Like the other repositories it works inside the caller's session and never commits. Every write
that can race (two /stop at once, /forget delivered twice) is one conditional statement that
reports whether it happened; the erasure's first statement claims the customer row, so the rest
of that transaction works on a row nobody else can change any more (PostgreSQL holds the row
lock, SQLite the database's write lock from the first write on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Result,
    Select,
    String,
    delete,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Answer,
    Case,
    CaseMessage,
    Customer,
    LinkKind,
    LinkTarget,
    Survey,
    SurveyState,
    Visit,
    VisitSource,
)

__all__ = ["ErasureTarget", "PrivacyRepository"]

#: What an erased deep-link visit's id becomes: unique (the row's own key) and free of the
#: Telegram user id that `bot.arrivals.link_visit_id` put into it.
ERASED_VISIT_PREFIX = "erased:"


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


@dataclass(frozen=True, slots=True)
class ErasureTarget:
    """The customer being erased, as they were just before: what the erasure must look for."""

    customer_id: int
    telegram_user_id: int
    external_ref: str | None


class PrivacyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- /stop and /start --------------------------------------------------------------------

    async def customer_id(self, telegram_user_id: int) -> int | None:
        """The (unerased) customer with this Telegram user id, if any."""
        return await self._session.scalar(
            select(Customer.id).where(
                Customer.telegram_user_id == telegram_user_id, Customer.erased_at.is_(None)
            )
        )

    async def opt_out(self, telegram_user_id: int, *, at: datetime) -> int | None:
        """Record /stop at ``at``; the customer's id if it was recorded now, None if they had
        opted out already (the first moment is kept) or are unknown."""
        return await self._session.scalar(
            update(Customer)
            .where(
                Customer.telegram_user_id == telegram_user_id,
                Customer.erased_at.is_(None),
                Customer.opted_out_at.is_(None),
            )
            .values(opted_out_at=at)
            .returning(Customer.id)
            .execution_options(synchronize_session=False)
        )

    async def opt_in(self, telegram_user_id: int) -> bool:
        """Undo /stop; False if the customer is unknown or had not opted out."""
        result = await self._session.execute(
            update(Customer)
            .where(
                Customer.telegram_user_id == telegram_user_id,
                Customer.erased_at.is_(None),
                Customer.opted_out_at.is_not(None),
            )
            .values(opted_out_at=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def survey_ids(self, customer_id: int, states: Iterable[SurveyState]) -> list[int]:
        """The customer's surveys now in one of ``states``, oldest first."""
        rows = await self._session.scalars(
            select(Survey.id)
            .where(Survey.customer_id == customer_id, Survey.state.in_(tuple(states)))
            .order_by(Survey.id)
        )
        return list(rows)

    # -- /forget -------------------------------------------------------------------------------

    async def claim_for_erasure(
        self, telegram_user_id: int, *, at: datetime
    ) -> ErasureTarget | None:
        """Mark the customer erased at ``at`` (their personal fields are cleared later in the
        same transaction, by `clear_customer`) and say who they were; None if there is no such
        unerased customer, or another erasure got there first."""
        row = (
            await self._session.execute(
                update(Customer)
                .where(Customer.telegram_user_id == telegram_user_id, Customer.erased_at.is_(None))
                .values(erased_at=at)
                .returning(Customer.id, Customer.telegram_user_id, Customer.external_ref)
                .execution_options(synchronize_session=False)
            )
        ).first()
        if row is None:
            return None
        return ErasureTarget(customer_id=row[0], telegram_user_id=row[1], external_ref=row[2])

    async def scrub_answers(self, customer_id: int) -> int:
        """Take the customer's own words out of their answers: comment, voice note or photo, and
        the reasons a model read from the comment. Scores, tapped reasons, sentiment and times
        stay. The bot message id of the last step goes too: it points into the person's chat.
        How many answers there were."""
        result = await self._session.execute(
            update(Answer)
            .where(Answer.customer_id == customer_id)
            .values(
                comment=None,
                media_kind=None,
                media_file_id=None,
                # null(): a Python None in a JSON column would be stored as JSON 'null'.
                suggested_reasons=null(),
                prompt_message_id=None,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def scrub_cases(self, target: ErasureTarget) -> int:
        """Take the customer's words out of their cases: every message's text and media (staff
        replies quote or address the customer too), the customer's Telegram id as the author of
        their own messages, the message ids in their private chat, and the resolution note. The
        cases themselves, their states and times stay for the statistics. How many messages
        there were."""
        cases = self._cases_of(target.customer_id)
        await self._session.execute(
            update(CaseMessage)
            .where(
                CaseMessage.case_id.in_(cases),
                CaseMessage.author_user_id == target.telegram_user_id,
            )
            .values(author_user_id=None)
            .execution_options(synchronize_session=False)
        )
        result = await self._session.execute(
            update(CaseMessage)
            .where(CaseMessage.case_id.in_(cases))
            .values(text=None, media_kind=None, media_file_id=None, customer_message_id=None)
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(
            update(Case)
            .where(Case.id.in_(cases))
            .values(resolution_note=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def forget_survey_chats(self, customer_id: int) -> None:
        """Forget where the customer's surveys went: the chat id of a private chat is the
        person's Telegram user id."""
        await self._session.execute(
            update(Survey)
            .where(Survey.customer_id == customer_id)
            .values(chat_id=None, message_id=None)
            .execution_options(synchronize_session=False)
        )

    async def rename_link_visits(self, customer_id: int) -> int:
        """Give the customer's deep-link visits an id without their Telegram user id in it
        (``erased:<visit row id>``: unique among erased visits; it could clash only with a business
        visit id of exactly that form, which a business has no reason to send). How many there
        were.

        Only deep-link visits: their id was made up by us from the Telegram user id. Visits from
        the API or a CSV import keep theirs: that is the business's own key for a visit in its
        own system, which it holds anyway; it names no one in our database once the customer
        row is cleared, and keeping it lets the business still match the anonymous score to its
        visit (and keeps a re-sent API call idempotent instead of recording the visit again)."""
        result = await self._session.execute(
            update(Visit)
            .where(Visit.customer_id == customer_id, Visit.source == VisitSource.LINK)
            .values(external_id=literal(ERASED_VISIT_PREFIX, String) + Visit.id.cast(String))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def delete_personal_links(self, external_ref: str | None) -> int:
        """Delete the personal link targets of this customer ref, so their links stop working.
        How many there were."""
        if external_ref is None:
            return 0
        result = await self._session.execute(
            delete(LinkTarget).where(
                LinkTarget.kind == LinkKind.CUSTOMER, LinkTarget.customer_ref == external_ref
            )
        )
        return _rowcount(result)

    async def clear_customer(self, customer_id: int) -> None:
        """Clear the customer row's personal fields; the row stays, as the anonymous owner of
        their visits, surveys and answers."""
        await self._session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(
                telegram_user_id=None,
                external_ref=None,
                first_name=None,
                username=None,
                language=None,
                timezone=None,
            )
            .execution_options(synchronize_session=False)
        )

    @staticmethod
    def _cases_of(customer_id: int) -> Select[tuple[int]]:
        """The customer's cases: opened for them, or about one of their answers."""
        answers = select(Answer.id).where(Answer.customer_id == customer_id)
        return select(Case.id).where(
            or_(Case.customer_id == customer_id, Case.answer_id.in_(answers))
        )
