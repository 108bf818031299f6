"""The domain as tables: SQLAlchemy 2.0 typed models shared by SQLite and PostgreSQL.

Conventions that hold for every model here:

- Times are `UTCDateTime`: timezone-aware UTC in Python on both backends. A naive datetime is
  refused when written, because a naive value cannot say which instant it means.
- No column takes its value from the wall clock. `created_at` and friends are set by the code that
  creates the row, from an injected `bot.clock.Clock` (tests use a `FakeClock`).
- States are `enum.StrEnum` stored as their string values in a VARCHAR with a CHECK constraint
  (not a native PostgreSQL ENUM), so the two backends behave the same and a new state is a
  one-line migration of the CHECK.
- Telegram ids (users, chats, messages, topics) are BIGINT: supergroup chat ids exceed 32 bits.
- Constraint and index names come from `NAMING_CONVENTION`, so migrations can refer to them.
- Relationships never load lazily (`lazy="raise_on_sql"`): with async IO an implicit load
  cannot work, and this way the mistake is reported clearly. Load what you need with
  `selectinload(...)` or `await session.refresh(obj, ["attribute"])`.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.test_visits import TEST_VISITS_WHERE

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, always timezone-aware UTC on the Python side.

    PostgreSQL stores it as `timestamp with time zone`. SQLite has no such type, so it is stored
    as naive UTC text (`YYYY-MM-DD HH:MM:SS.ffffff`, which sorts and compares correctly) and the
    UTC zone is put back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime needs a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} refused: pass a timezone-aware time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    """A portable enum column: the member values in a VARCHAR(32), guarded by a CHECK."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        str: String(255),
        dict[str, Any]: JSON(),
    }


# --------------------------------------------------------------------------------------- states


class SurveyState(enum.StrEnum):
    """scheduled → sent → answered | expired | skipped | failed."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"
    SKIPPED = "skipped"
    FAILED = "failed"


class SurveyScale(enum.StrEnum):
    CSAT = "csat"  # 1–5
    NPS = "nps"  # 0–10


class VisitSource(enum.StrEnum):
    API = "api"
    LINK = "link"
    CSV = "csv"


class LinkKind(enum.StrEnum):
    """What a signed deep link does when pressed (see bot.links)."""

    LOCATION = "location"  # a QR code at a counter: records a visit for whoever scans it
    CUSTOMER = "customer"  # a personal link: binds the one who presses Start to a customer ref


class SentimentLabel(enum.StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"
    # A high score with clearly negative words; routed like a negative.
    MIXED = "mixed"
    # The classifier could not read the text (e.g. a language it does not know).
    UNKNOWN = "unknown"


class AnswerStage(enum.StrEnum):
    """Where a customer's conversation about one answer stands: what the bot waits for next.

    A high score: comment → done. A low score: reasons → comment → contact → done. Unsolicited
    feedback is done at once (a later message within a short while adds to it).
    """

    REASONS = "reasons"  # reason chips offered, waiting for Done
    COMMENT = "comment"  # asked for a comment, with Skip
    CONTACT = "contact"  # asked "may a manager contact you?"
    DONE = "done"


class CaseState(enum.StrEnum):
    """open → taken → resolved → (confirmed | reopened); a reopened case can be taken again."""

    OPEN = "open"
    TAKEN = "taken"
    RESOLVED = "resolved"
    CONFIRMED = "confirmed"
    REOPENED = "reopened"


class CaseSeverity(enum.StrEnum):
    """How urgent a case is; routing rules match on it. CRITICAL: the customer asked for contact."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class CaseTrigger(enum.StrEnum):
    """Why a case was opened (the strongest reason, when there are several)."""

    LOW_SCORE = "low_score"
    NEGATIVE_COMMENT = "negative_comment"
    MIXED = "mixed"
    UNSOLICITED = "unsolicited"
    CONTACT_REQUESTED = "contact_requested"


class CaseOffer(enum.StrEnum):
    """What extra the business offered when resolving, if anything."""

    NONE = "none"
    REFUND = "refund"
    VOUCHER = "voucher"
    FREE_SERVICE = "free_service"
    OTHER = "other"


class MessageDirection(enum.StrEnum):
    CUSTOMER_TO_STAFF = "customer_to_staff"
    STAFF_TO_CUSTOMER = "staff_to_customer"
    # A back-room remark (`//…`) or a note by the bot in the thread: never shown to the customer.
    INTERNAL = "internal"


class RoleName(enum.StrEnum):
    ADMIN = "admin"
    STAFF = "staff"


class ModelKind(enum.StrEnum):
    """What a trained model predicts (see bot.learning)."""

    SENTIMENT = "sentiment"  # negative / neutral / positive from a comment's words
    REASONS = "reasons"  # reason codes suggested for words that came without chips


class JobState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# ------------------------------------------------------------------------------------ customers


class Customer(Base):
    """Someone who was served. Known by Telegram id once they started the bot, or by the
    business's own reference (`external_ref`) before that; the two meet through a personal link.

    /forget clears the personal fields (Telegram id and external ref included) and sets
    `erased_at`; the row stays so that anonymous scores keep counting, and a later /start from
    the same person makes a new customer.
    """

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    external_ref: Mapped[str | None] = mapped_column(String(128), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(256))
    username: Mapped[str | None] = mapped_column(String(64))
    # IETF language tag, e.g. "en" or "zh-hans"; chosen from Telegram's language_code or /language.
    language: Mapped[str | None] = mapped_column(String(16))
    # IANA zone, e.g. "Europe/Berlin"; None means the TIMEZONE setting.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # When they first pressed Start: from then on the bot may write to them.
    started_at: Mapped[datetime | None]
    opted_out_at: Mapped[datetime | None]  # /stop; cleared by /start
    unreachable_at: Mapped[datetime | None]  # Telegram answered 403: blocked or never started
    last_surveyed_at: Mapped[datetime | None]  # for the survey cooldown
    erased_at: Mapped[datetime | None]  # /forget
    created_at: Mapped[datetime]

    visits: Mapped[list[Visit]] = relationship(back_populates="customer", lazy="raise_on_sql")


class Visit(Base):
    """A service event reported by the business; `external_id` is its own visit id and the
    idempotency key of every way in (API, deep link, CSV). A deep-link visit, which has no
    business id, gets one made up by the code that records it."""

    __tablename__ = "visits"
    __table_args__ = (
        Index(None, "location", "occurred_at"),
        # The few test-survey visits, which statistics subtract (migration 0005).
        Index(
            "ix_visits_test",
            "id",
            sqlite_where=text(TEST_VISITS_WHERE),
            postgresql_where=text(TEST_VISITS_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    location: Mapped[str | None] = mapped_column(String(128))
    staff: Mapped[str | None] = mapped_column(String(128))
    service: Mapped[str | None] = mapped_column(String(128))
    occurred_at: Mapped[datetime]
    source: Mapped[VisitSource] = mapped_column(_enum(VisitSource, "visit_source"))
    created_at: Mapped[datetime]

    customer: Mapped[Customer] = relationship(back_populates="visits", lazy="raise_on_sql")
    survey: Mapped[Survey | None] = relationship(back_populates="visit", lazy="raise_on_sql")


class LinkTarget(Base):
    """Where a signed deep link leads. A Telegram start payload holds at most 64 characters, too
    few for a long location name, so the payload carries this row's id (signed) instead of the
    target itself; see bot.links for the format. The same target always gets the same row
    (`fingerprint`), hence the same payload: printing a QR code again gives the same code."""

    __tablename__ = "link_targets"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'location' AND location IS NOT NULL AND customer_ref IS NULL)"
            " OR (kind = 'customer' AND customer_ref IS NOT NULL AND location IS NULL"
            " AND staff IS NULL AND service IS NULL)",
            name="target_matches_kind",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[LinkKind] = mapped_column(_enum(LinkKind, "link_kind"))
    # SHA-256 (hex) of the canonical target: the key that makes creating a link idempotent.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    # Location links: copied onto every visit recorded through the link.
    location: Mapped[str | None] = mapped_column(String(128))
    staff: Mapped[str | None] = mapped_column(String(128))
    service: Mapped[str | None] = mapped_column(String(128))
    # Personal links: the business's reference of the customer (Customer.external_ref).
    customer_ref: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]


# -------------------------------------------------------------------------------------- surveys


class Survey(Base):
    """The question about one visit (at most one per visit)."""

    __tablename__ = "surveys"
    __table_args__ = (
        Index(None, "state", "due_at"),
        Index(None, "customer_id", "state"),
        Index(None, "sent_at"),
        # /stats: sent in a range, and whether answered, from the index alone (migration 0005).
        Index("ix_surveys_stats", "sent_at", "answered_at", "visit_id"),
        # /stats at some locations: their surveys sent in a range (migration 0006).
        Index("ix_surveys_location", "location", "sent_at", "answered_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), unique=True)
    # Denormalised from the visit: the cooldown and "is a survey pending?" ask by customer.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # The visit's location, copied by the database as the row is inserted (a trigger of
    # migration 0006, so no writer has to): /stats filters by it without reaching the visit.
    location: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[SurveyState] = mapped_column(_enum(SurveyState, "survey_state"))
    scale: Mapped[SurveyScale] = mapped_column(_enum(SurveyScale, "survey_scale"))
    due_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # Where the survey message went, so a tap can edit it.
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    reminder_sent_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    # When it reached expired/skipped/failed, and why (every skip or expiry records a reason).
    closed_at: Mapped[datetime | None]
    state_reason: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime]

    visit: Mapped[Visit] = relationship(back_populates="survey", lazy="raise_on_sql")
    answer: Mapped[Answer | None] = relationship(back_populates="survey", lazy="raise_on_sql")


class Reason(Base):
    """A complaint reason chip. Admins add, rename, reorder and hide them; a hidden reason is
    no longer offered but keeps its history and statistics."""

    __tablename__ = "reasons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # stable key, e.g. "rude_staff"
    label: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]


class AnswerReason(Base):
    """The reasons a customer tapped for one answer (a row per chip: stats group by reason)."""

    __tablename__ = "answer_reasons"
    # /stats: chips counted by reason with the answer at hand, from the index alone (0005).
    __table_args__ = (Index("ix_answer_reasons_stats", "reason_id", "answer_id"),)

    answer_id: Mapped[int] = mapped_column(
        ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True
    )
    reason_id: Mapped[int] = mapped_column(ForeignKey("reasons.id"), primary_key=True, index=True)


class Answer(Base):
    """What a customer said: a score for a survey, or unsolicited feedback (no survey, no score).

    At most one answer per survey (unique `survey_id`), so a double tap records one answer.
    Every step of the conversation updates the row as it happens.
    """

    __tablename__ = "answers"
    __table_args__ = (
        CheckConstraint("score BETWEEN 0 AND 10", name="score_range"),
        CheckConstraint("unsolicited OR survey_id IS NOT NULL", name="survey_or_unsolicited"),
        Index(None, "created_at"),
        # "Is this customer in the middle of a conversation?" on every message they send.
        Index(None, "customer_id", "stage"),
        # /stats: counted by what was said, and each week's scores (migration 0005).
        Index(
            "ix_answers_stats",
            "scale",
            "score",
            "unsolicited",
            "sentiment_label",
            "sentiment_corrected",
            "created_at",
            "survey_id",
        ),
        Index("ix_answers_trend", "scale", "created_at", "score"),
        # /stats at some locations: their answers given in a range (migration 0006).
        Index("ix_answers_location", "location", "created_at", "scale", "score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[int | None] = mapped_column(ForeignKey("surveys.id"), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    # The survey's visit's location (None for unsolicited feedback), copied by the database as
    # the row is inserted (migration 0006): the tap that records the answer does no more work.
    location: Mapped[str | None] = mapped_column(String(128))
    unsolicited: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    scale: Mapped[SurveyScale | None] = mapped_column(_enum(SurveyScale, "survey_scale"))
    score: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    # A voice note or photo sent instead of a text comment: Telegram's file id, shown to staff.
    media_kind: Mapped[str | None] = mapped_column(String(32))
    media_file_id: Mapped[str | None] = mapped_column(String(256))
    contact_requested: Mapped[bool | None] = mapped_column(Boolean)  # None: not asked/answered
    sentiment_label: Mapped[SentimentLabel | None] = mapped_column(
        _enum(SentimentLabel, "sentiment_label")
    )
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_language: Mapped[str | None] = mapped_column(String(16))
    # A staff correction of the label: the strongest training label there is.
    sentiment_corrected: Mapped[SentimentLabel | None] = mapped_column(
        _enum(SentimentLabel, "sentiment_corrected")
    )
    # Reason codes suggested by a model from the free text (shown to staff as suggestions).
    suggested_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    # What the bot waits for next, and the bot message whose buttons belong to that step (so a
    # stale button is recognised and a finished step's buttons can be taken away).
    stage: Mapped[AnswerStage | None] = mapped_column(_enum(AnswerStage, "answer_stage"))
    prompt_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # When the customer reached the end of the conversation (None: stopped half-way).
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]

    survey: Mapped[Survey | None] = relationship(back_populates="answer", lazy="raise_on_sql")
    reasons: Mapped[list[Reason]] = relationship(
        secondary="answer_reasons", order_by=Reason.position, lazy="raise_on_sql"
    )


# ---------------------------------------------------------------------------------------- cases


class StaffChat(Base):
    """A group or forum supergroup where staff handle cases. Removing one deactivates it, so old
    cases keep their chat."""

    __tablename__ = "staff_chats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    title: Mapped[str | None] = mapped_column(String(256))
    is_forum: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    added_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class RoutingRule(Base):
    """Sends matching cases to a staff chat; rules are tried by `position`, first match wins.
    A None matcher matches anything, so a rule with no matchers is a catch-all."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    location: Mapped[str | None] = mapped_column(String(128))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[CaseSeverity | None] = mapped_column(_enum(CaseSeverity, "case_severity"))
    staff_chat_id: Mapped[int] = mapped_column(ForeignKey("staff_chats.id"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]

    staff_chat: Mapped[StaffChat] = relationship(lazy="raise_on_sql")


class Case(Base):
    """An unhappy customer in front of a person until the loop is closed."""

    __tablename__ = "cases"
    __table_args__ = (
        Index(None, "state"),
        Index(None, "staff_chat_id", "state"),
        Index(None, "staff_chat_id", "thread_id"),
        Index(None, "staff_chat_id", "card_message_id"),
        Index(None, "created_at"),
        # /stats: the period's cases, their times and follow-ups, from the index alone (0005).
        Index(
            "ix_cases_stats",
            "created_at",
            "first_responded_at",
            "resolved_at",
            "recovered",
            "answer_id",
        ),
        # /stats at some locations: their cases of a period (migration 0006).
        Index(
            "ix_cases_location",
            "location",
            "created_at",
            "first_responded_at",
            "resolved_at",
            "recovered",
            "answer_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One case per answer: a later trigger on the same answer raises the case's severity.
    answer_id: Mapped[int | None] = mapped_column(ForeignKey("answers.id"), unique=True)
    # The answer's location, copied by the database as the row is inserted (migration 0006).
    location: Mapped[str | None] = mapped_column(String(128))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    state: Mapped[CaseState] = mapped_column(_enum(CaseState, "case_state"))
    severity: Mapped[CaseSeverity] = mapped_column(_enum(CaseSeverity, "case_severity"))
    trigger: Mapped[CaseTrigger] = mapped_column(_enum(CaseTrigger, "case_trigger"))
    # None when there was no staff chat to route to (admins were told privately).
    staff_chat_id: Mapped[int | None] = mapped_column(ForeignKey("staff_chats.id"))
    # Forum supergroups: the case's topic. Plain groups: None, the card's reply thread is the case.
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    taken_by: Mapped[int | None] = mapped_column(BigInteger)  # staff member's Telegram user id
    taken_by_name: Mapped[str | None] = mapped_column(String(256))
    taken_at: Mapped[datetime | None]
    first_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    first_responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[int | None] = mapped_column(BigInteger)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    offer: Mapped[CaseOffer | None] = mapped_column(_enum(CaseOffer, "case_offer"))
    followup_sent_at: Mapped[datetime | None]
    # The customer's answer to "Was this put right?": True confirmed, False reopened.
    recovered: Mapped[bool | None] = mapped_column(Boolean)
    closed_at: Mapped[datetime | None]  # confirmed
    reopened_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]

    answer: Mapped[Answer | None] = relationship(lazy="raise_on_sql")
    customer: Mapped[Customer | None] = relationship(lazy="raise_on_sql")
    staff_chat: Mapped[StaffChat | None] = relationship(lazy="raise_on_sql")
    messages: Mapped[list[CaseMessage]] = relationship(
        back_populates="case", order_by="CaseMessage.id", lazy="raise_on_sql"
    )


class CaseMessage(Base):
    """One message in a case's conversation, with its Telegram ids on both sides, so that a
    reply to a relayed message finds its case and a staff edit can be recognised."""

    __tablename__ = "case_messages"
    __table_args__ = (
        Index(None, "staff_chat_id", "staff_message_id"),
        Index(None, "customer_message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    direction: Mapped[MessageDirection] = mapped_column(
        _enum(MessageDirection, "message_direction")
    )
    author_user_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str | None] = mapped_column(Text)
    media_kind: Mapped[str | None] = mapped_column(String(32))
    media_file_id: Mapped[str | None] = mapped_column(String(256))
    # The message in the staff chat (our staff_chats row + Telegram's message id there).
    staff_chat_id: Mapped[int | None] = mapped_column(ForeignKey("staff_chats.id"))
    staff_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # The message in the customer's private chat (chat id = the customer's Telegram user id).
    customer_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]

    case: Mapped[Case] = relationship(back_populates="messages", lazy="raise_on_sql")


# ------------------------------------------------------------------------------ configuration


class Template(Base):
    """An admin's replacement for a customer-facing text in one language."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("name", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class Setting(Base):
    """A runtime setting changed in the chat; it wins over the environment."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class Role(Base):
    """A role granted in the chat (admins from ADMIN_IDS are not stored here)."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    role: Mapped[RoleName] = mapped_column(_enum(RoleName, "role_name"))
    granted_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """Who changed what, from which value to which, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(BigInteger)  # None: the system itself
    actor_name: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(256))
    old_value: Mapped[Any | None] = mapped_column(JSON)
    new_value: Mapped[Any | None] = mapped_column(JSON)


# ------------------------------------------------------------------------------------- learning


class TrainedModel(Base):
    """One training run of a model learned from the business's own labelled answers.

    Versioned per kind: `version` counts up, `examples` and `labels_until` say which labels it
    saw (every label given up to that time), `metrics` what it scored on the held-out part
    against the baseline. Only an `active` model is used, and at most one per kind is active:
    a run that does not beat the baseline is kept for the record but never switched on.
    """

    __tablename__ = "trained_models"
    __table_args__ = (UniqueConstraint("kind", "version"), Index(None, "kind", "active"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[ModelKind] = mapped_column(_enum(ModelKind, "model_kind"))
    version: Mapped[int] = mapped_column(Integer)
    examples: Mapped[int] = mapped_column(Integer)
    labels_until: Mapped[datetime | None]
    metrics: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The fitted model, serialised by bot.learning (never read from anywhere but this table).
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    trained_at: Mapped[datetime]


# ----------------------------------------------------------------------------------------- jobs


class Job(Base):
    """The one durable timer for all timed work; see `storage.jobs.JobQueue` for the protocol."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "available_at"),
        Index(None, "state", "due_at"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint(
            "(state IN ('pending', 'running')) = (available_at IS NOT NULL)",
            name="available_while_active",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"))
    # When the job can next be claimed: due_at while pending, the lease's end while running,
    # None once finished. Claiming is one range scan on it.
    available_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    # At most one job ever per key (in any state), so scheduling is idempotent.
    dedupe_key: Mapped[str | None] = mapped_column(String(191), unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# ---------------------------------------------------------------------------- /stats roll-up


class StatsRollupState(Base):
    """The one row (id 1) saying what the daily roll-up holds: the local days [first_day,
    end_day) of the time zone ``zone`` (storage.stats_rollup). Its refresh locks this row."""

    __tablename__ = "stats_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone: Mapped[str | None] = mapped_column(String(64))
    first_day: Mapped[date | None] = mapped_column(Date)
    end_day: Mapped[date | None] = mapped_column(Date)
    refreshed_at: Mapped[datetime | None]


class StatsStale(Base):
    """Append-only: each write that changes a rolled-up count adds the UTC hour of the row's
    day-deciding time (a trigger of migration 0007); that hour's local days are stale until
    the next refresh, which removes exactly the rows it has read."""

    __tablename__ = "stats_stale"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    at: Mapped[datetime]


def _day_table(name: str, *columns: Column[Any]) -> Table:
    """A roll-up table: counts per local day and location (no key: a day is replaced whole)."""
    return Table(
        name,
        Base.metadata,
        Column("day", Date, nullable=False),
        Column("location", String(128)),
        *columns,
        Index(None, "day"),
    )


#: Surveys sent per day (by `sent_at`), and how many of them are answered.
stats_daily_surveys = _day_table(
    "stats_daily_surveys",
    Column("sent", Integer, nullable=False),
    Column("answered", Integer, nullable=False),
)
#: Answers given per day (by `created_at`) by what they said; label: the effective one.
stats_daily_answers = _day_table(
    "stats_daily_answers",
    Column("scale", String(32)),
    Column("score", SmallInteger),
    Column("unsolicited", Boolean, nullable=False),
    Column("label", String(32)),
    Column("answers", Integer, nullable=False),
)
#: Chips per day of their answer and reason.
stats_daily_reasons = _day_table(
    "stats_daily_reasons",
    Column("reason_id", Integer, nullable=False),
    Column("chips", Integer, nullable=False),
)
#: Cases opened per day (by `created_at`), follow-ups answered and recovered among them.
stats_daily_cases = _day_table(
    "stats_daily_cases",
    Column("opened", Integer, nullable=False),
    Column("followups", Integer, nullable=False),
    Column("recovered", Integer, nullable=False),
)
