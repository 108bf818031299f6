"""Learned models in the database: the labelled examples they learn from, their training runs,
and which run is in use.

Works inside the caller's session and never commits (see storage.repositories). The policy —
which score gives which label, when a run is good enough — is bot.training's and bot.learning's;
this module only says which answers can teach anything:

- a comment (typed words; a voice note alone teaches nothing) that is not from a test survey
  (its visit's external id starts with the test prefix) and not from a customer who erased
  their data;
- for sentiment: with the customer's own score, or with a staff correction (which wins);
  unsolicited feedback has no score, so it counts only once staff corrected it;
- for reasons: with at least one reason chip the customer tapped.

Runs are versioned per kind. At most one run per kind is active; switching is one transaction
that switches every other run of the kind off. Should two processes switch at the same moment
(PostgreSQL, read committed) both could end up on; `active` therefore reads the newest active
run, so every process still agrees on one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import ColumnElement

from storage.models import (
    Answer,
    AnswerReason,
    AuditEntry,
    Customer,
    ModelKind,
    Reason,
    SentimentLabel,
    Survey,
    SurveyScale,
    TrainedModel,
    Visit,
)
from storage.test_visits import is_test_visit_id

__all__ = [
    "CORRECTABLE",
    "CORRECTION_ACTION",
    "ActiveRun",
    "LabelledComment",
    "ModelRepository",
    "ReasonExample",
]

#: The audit action of a staff correction of an answer's sentiment (counted as a new label).
CORRECTION_ACTION = "sentiment.correct"
#: The labels staff can give; a correction to anything else is not a label.
CORRECTABLE = (SentimentLabel.NEGATIVE, SentimentLabel.NEUTRAL, SentimentLabel.POSITIVE)


@dataclass(frozen=True, slots=True)
class LabelledComment:
    """A comment and what labels it: the staff's correction, else the customer's score."""

    text: str
    scale: SurveyScale | None
    score: int | None
    corrected: SentimentLabel | None


@dataclass(frozen=True, slots=True)
class ReasonExample:
    text: str
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActiveRun:
    """The active run of a kind without its payload: enough to tell whether it changed."""

    id: int
    version: int


def _teaching() -> ColumnElement[bool]:
    """Answers whose words may teach: a comment, no test visit, no erased customer."""
    return and_(
        Answer.comment.is_not(None),
        Answer.comment != "",
        or_(Customer.id.is_(None), Customer.erased_at.is_(None)),
        or_(Visit.id.is_(None), ~is_test_visit_id(Visit.external_id)),
    )


class ModelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- labelled examples ---------------------------------------------------------------------

    async def sentiment_examples(self) -> list[LabelledComment]:
        """Every comment labelled by a score or a staff correction, oldest first."""
        rows = await self._session.execute(
            select(Answer.comment, Answer.scale, Answer.score, Answer.sentiment_corrected)
            .outerjoin(Customer, Customer.id == Answer.customer_id)
            .outerjoin(Survey, Survey.id == Answer.survey_id)
            .outerjoin(Visit, Visit.id == Survey.visit_id)
            .where(
                _teaching(),
                or_(
                    Answer.sentiment_corrected.in_(CORRECTABLE),
                    and_(Answer.score.is_not(None), Answer.scale.is_not(None)),
                ),
            )
            .order_by(Answer.id)
        )
        return [
            LabelledComment(
                text=comment,
                scale=scale,
                score=score,
                corrected=corrected if corrected in CORRECTABLE else None,
            )
            for comment, scale, score, corrected in rows
        ]

    async def reason_examples(self) -> list[ReasonExample]:
        """Every comment given with tapped reason chips, with the chips' codes, oldest first."""
        rows = await self._session.execute(
            select(Answer.id, Answer.comment, Reason.code)
            .join(AnswerReason, AnswerReason.answer_id == Answer.id)
            .join(Reason, Reason.id == AnswerReason.reason_id)
            .outerjoin(Customer, Customer.id == Answer.customer_id)
            .outerjoin(Survey, Survey.id == Answer.survey_id)
            .outerjoin(Visit, Visit.id == Survey.visit_id)
            .where(_teaching())
            .order_by(Answer.id, Reason.position, Reason.id)
        )
        texts: dict[int, str] = {}
        codes: dict[int, list[str]] = {}
        for answer_id, comment, code in rows:
            texts[answer_id] = comment
            codes.setdefault(answer_id, []).append(code)
        return [ReasonExample(texts[key], tuple(codes[key])) for key in texts]

    async def labels_since(self, since: datetime | None) -> int:
        """About how many labels came in after ``since`` (None: ever): comments of answers given
        since then with a score, and staff corrections since then. Two index range scans, for
        the RETRAIN_EVERY trigger on every label; it does not leave out test visits (a trigger
        a few labels early does no harm)."""
        comments = select(func.count()).where(
            Answer.comment.is_not(None), Answer.comment != "", Answer.score.is_not(None)
        )
        corrections = select(func.count()).where(AuditEntry.action == CORRECTION_ACTION)
        if since is not None:
            comments = comments.where(Answer.created_at > since)
            corrections = corrections.where(AuditEntry.at > since)
        return int(await self._session.scalar(comments.select_from(Answer)) or 0) + int(
            await self._session.scalar(corrections.select_from(AuditEntry)) or 0
        )

    async def label_progress(self, kind: ModelKind) -> tuple[int, int]:
        """(the kind's newest run's version, 0 if none; `labels_since` its `labels_until`), in
        one statement: the RETRAIN_EVERY trigger asks this after every label."""
        row = (await self._session.execute(_LABEL_PROGRESS, {"kind": kind})).one()
        return int(row[0]), int(row[1])

    # -- runs ----------------------------------------------------------------------------------

    async def add_run(
        self,
        kind: ModelKind,
        *,
        examples: int,
        labels_until: datetime | None,
        metrics: dict[str, Any],
        payload: bytes,
        trained_at: datetime,
    ) -> TrainedModel:
        """Store a training run as the kind's next version, switched off."""
        latest = await self._session.scalar(
            select(func.max(TrainedModel.version)).where(TrainedModel.kind == kind)
        )
        run = TrainedModel(
            kind=kind,
            version=(latest or 0) + 1,
            examples=examples,
            labels_until=labels_until,
            metrics=metrics,
            active=False,
            payload=payload,
            trained_at=trained_at,
        )
        self._session.add(run)
        await self._session.flush()
        return run

    async def activate(self, kind: ModelKind, run_id: int) -> None:
        """Make run ``run_id`` the kind's one active run (inside the caller's transaction)."""
        await self._session.execute(
            update(TrainedModel)
            .where(TrainedModel.kind == kind, TrainedModel.id != run_id, TrainedModel.active)
            .values(active=False)
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(
            update(TrainedModel)
            .where(TrainedModel.id == run_id, TrainedModel.kind == kind)
            .values(active=True)
            .execution_options(synchronize_session=False)
        )

    async def drop_old_payloads(self, kind: ModelKind, *, keep: int) -> int:
        """Empty the fitted model of every run of the kind that is neither active nor among its
        ``keep`` newest; the run's record (version, labels, metrics) stays. A model is megabytes
        and one is trained every night: kept whole, they would grow the database without end,
        while only the active one is ever loaded. Returns how many were emptied."""
        newest = (
            select(TrainedModel.id)
            .where(TrainedModel.kind == kind)
            .order_by(TrainedModel.version.desc())
            .limit(keep)
        )
        result = await self._session.execute(
            update(TrainedModel)
            .where(
                TrainedModel.kind == kind,
                TrainedModel.active.is_(False),
                TrainedModel.id.not_in(newest.scalar_subquery()),
                func.length(TrainedModel.payload) > 0,
            )
            .values(payload=b"")
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0

    async def latest_run(self, kind: ModelKind) -> TrainedModel | None:
        """The kind's newest run, active or not (its payload is not loaded)."""
        return await self._session.scalar(
            select(TrainedModel)
            .where(TrainedModel.kind == kind)
            .order_by(TrainedModel.version.desc())
            .limit(1)
            .options(_without_payload())
        )

    async def active_run(self, kind: ModelKind) -> ActiveRun | None:
        """Which run of the kind is active, without loading it."""
        row = (
            await self._session.execute(
                select(TrainedModel.id, TrainedModel.version)
                .where(TrainedModel.kind == kind, TrainedModel.active)
                .order_by(TrainedModel.version.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else ActiveRun(id=row[0], version=row[1])

    async def active(self, kind: ModelKind) -> TrainedModel | None:
        """The kind's active run, payload included."""
        return await self._session.scalar(
            select(TrainedModel)
            .where(TrainedModel.kind == kind, TrainedModel.active)
            .order_by(TrainedModel.version.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )

    async def runs(self, kind: ModelKind, *, limit: int = 20) -> Sequence[TrainedModel]:
        """The kind's newest runs first, without payloads (for the record and the CLI)."""
        rows = await self._session.scalars(
            select(TrainedModel)
            .where(TrainedModel.kind == kind)
            .order_by(TrainedModel.version.desc())
            .limit(limit)
            .options(_without_payload())
        )
        return list(rows)


def _without_payload() -> Any:
    return defer(TrainedModel.payload, raiseload=True)


def _label_progress() -> Any:
    """`ModelRepository.label_progress`'s statement, built once (building and keying a statement
    costs more CPU than running it). The same counts as `labels_since`, whose ``since`` (the
    newest run's `labels_until`) is a subquery here; none counts every label."""
    newest = (
        select(TrainedModel.version, TrainedModel.labels_until)
        .where(TrainedModel.kind == bindparam("kind"))
        .order_by(TrainedModel.version.desc())
        .limit(1)
        .subquery()
    )
    since = func.coalesce(
        select(newest.c.labels_until).scalar_subquery(),
        literal(datetime(1, 1, 1, tzinfo=UTC), type_=TrainedModel.labels_until.type),
    )
    comments = (
        select(func.count())
        .select_from(Answer)
        .where(
            Answer.comment.is_not(None),
            Answer.comment != "",
            Answer.score.is_not(None),
            Answer.created_at > since,
        )
        .scalar_subquery()
    )
    corrections = (
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == CORRECTION_ACTION, AuditEntry.at > since)
        .scalar_subquery()
    )
    return select(
        func.coalesce(select(newest.c.version).scalar_subquery(), 0), comments + corrections
    )


_LABEL_PROGRESS = _label_progress()
