"""The learned models' life on a real database: which answers teach, how a run is judged and
switched on, what the conversation then reads, and the jobs that retrain."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.conversation import ConversationPolicy, ConversationService
from bot.scheduler import Scheduler, SchedulerConfig
from bot.sentiment import BaselineClassifier
from bot.test_surveys import TEST_VISIT_PREFIX
from bot.training import (
    KEEP_MODELS,
    RETRAIN,
    AdaptiveClassifier,
    TrainingService,
    _labelled,
    next_nightly,
    use_of,
)
from storage.jobs import JobQueue
from storage.model_repository import CORRECTION_ACTION, ModelRepository
from storage.models import (
    Answer,
    AnswerReason,
    AnswerStage,
    AuditEntry,
    Customer,
    Job,
    JobState,
    ModelKind,
    Reason,
    SentimentLabel,
    Survey,
    SurveyScale,
    SurveyState,
    TrainedModel,
    Visit,
    VisitSource,
)
from storage.repositories import TelegramProfile

BERLIN = ZoneInfo("Europe/Berlin")

# Chinese comments the TextBlob baseline cannot read at all (it says "unknown").
CHINESE_NEGATIVE = [
    "太慢了",
    "服务态度很差",
    "菜是冷的",
    "等了很久",
    "很难吃",
    "非常失望",
    "再也不来了",
    "太贵了",
]
CHINESE_POSITIVE = [
    "很好吃",
    "服务很好",
    "非常满意",
    "下次还来",
    "味道不错",
    "送得很快",
    "强烈推荐",
    "环境很舒服",
]


def chinese_comments(count: int) -> list[tuple[str, int]]:
    """``count`` Chinese comments with the CSAT score their writer gave: two complaints or two
    compliments each, half and half."""
    negative = [f"{a}，{b}" for a, b in itertools.permutations(CHINESE_NEGATIVE, 2)]
    positive = [f"{a}，{b}" for a, b in itertools.permutations(CHINESE_POSITIVE, 2)]
    rows: list[tuple[str, int]] = []
    for i in range(count // 2):
        rows.append((negative[i * 7 % len(negative)], 1 + i % 2))
        rows.append((positive[i * 7 % len(positive)], 5 - i % 2))
    return rows


# English the baseline reads right every time: a learned model cannot beat it.
ENGLISH = [
    ("The food was great", 5),
    ("Excellent service, thank you", 5),
    ("Wonderful staff", 4),
    ("A lovely evening", 5),
    ("Really good coffee", 4),
    ("Terrible food", 1),
    ("Awful service", 1),
    ("The staff were rude", 2),
    ("A horrible experience", 1),
    ("Very bad coffee", 2),
]


@pytest.fixture
def queue(engine: AsyncEngine, clock: FakeClock) -> JobQueue:
    return JobQueue(engine, clock=clock)


@pytest.fixture
def classifier() -> AdaptiveClassifier:
    return AdaptiveClassifier()


@pytest.fixture
def training(
    session_factory: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    clock: FakeClock,
    classifier: AdaptiveClassifier,
) -> TrainingService:
    return TrainingService(session_factory, queue, clock, classifier, zone=BERLIN, retrain_every=5)


_people = itertools.count(1)


async def answered(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    text: str | None,
    score: int | None = None,
    *,
    scale: SurveyScale = SurveyScale.CSAT,
    corrected: SentimentLabel | None = None,
    test_visit: bool = False,
    erased: bool = False,
    reasons: Sequence[str] = (),
) -> int:
    """An answer as the conversation leaves it: with a score it answers a survey of a visit,
    without one it is unsolicited feedback."""
    now = clock.now()
    n = next(_people)
    async with sessions.begin() as session:
        customer = Customer(
            telegram_user_id=70_000 + n,
            first_name=f"C{n}",
            started_at=now,
            created_at=now,
            erased_at=now if erased else None,
        )
        session.add(customer)
        await session.flush()
        survey_id = None
        if score is not None:
            visit = Visit(
                external_id=f"{TEST_VISIT_PREFIX}{n}" if test_visit else f"order-{n}",
                customer_id=customer.id,
                location="Downtown",
                occurred_at=now,
                source=VisitSource.API,
                created_at=now,
            )
            session.add(visit)
            await session.flush()
            survey = Survey(
                visit_id=visit.id,
                customer_id=customer.id,
                state=SurveyState.ANSWERED,
                scale=scale,
                due_at=now,
                sent_at=now,
                created_at=now,
            )
            session.add(survey)
            await session.flush()
            survey_id = survey.id
        answer = Answer(
            survey_id=survey_id,
            customer_id=customer.id,
            unsolicited=score is None,
            scale=scale if score is not None else None,
            score=score,
            comment=text,
            sentiment_corrected=corrected,
            stage=AnswerStage.DONE,
            created_at=now,
            updated_at=now,
        )
        session.add(answer)
        await session.flush()
        for code in reasons:
            reason = await session.scalar(select(Reason).where(Reason.code == code))
            if reason is None:
                reason = Reason(code=code, label=code, position=0, hidden=False, created_at=now)
                session.add(reason)
                await session.flush()
            session.add(AnswerReason(answer_id=answer.id, reason_id=reason.id))
        return answer.id


async def runs(sessions: async_sessionmaker[AsyncSession], kind: ModelKind) -> list[TrainedModel]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(TrainedModel).where(TrainedModel.kind == kind).order_by(TrainedModel.version)
            )
        )


async def retrain_jobs(sessions: async_sessionmaker[AsyncSession]) -> list[Job]:
    async with sessions() as session:
        return list(await session.scalars(select(Job).where(Job.kind == RETRAIN).order_by(Job.id)))


# -- which answers teach -------------------------------------------------------------------------


async def test_comments_are_labelled_by_score_and_staff_corrections_win(
    session_factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await answered(session_factory, clock, "Cold soup", 1)
    await answered(session_factory, clock, "It was fine", 3)
    await answered(session_factory, clock, "Lovely", 5)
    await answered(
        session_factory, clock, "Lovely, said sarcastically", 5, corrected=SentimentLabel.NEGATIVE
    )
    await answered(session_factory, clock, "ok", 7, scale=SurveyScale.NPS)
    await answered(session_factory, clock, "Never again", None, corrected=SentimentLabel.NEGATIVE)
    # Teach nothing: unsolicited and uncorrected, a test survey, an erased customer, no words.
    await answered(session_factory, clock, "Hello there", None)
    await answered(session_factory, clock, "Testing the bot", 1, test_visit=True)
    await answered(session_factory, clock, "Bad", 1, erased=True)
    await answered(session_factory, clock, None, 2)
    await answered(session_factory, clock, "", 2)

    async with session_factory() as session:
        rows = await ModelRepository(session).sentiment_examples()
    sample = _labelled(rows)
    assert list(zip(sample.texts, sample.labels, strict=True)) == [
        ("Cold soup", SentimentLabel.NEGATIVE),
        ("It was fine", SentimentLabel.NEUTRAL),
        ("Lovely", SentimentLabel.POSITIVE),
        ("Lovely, said sarcastically", SentimentLabel.NEGATIVE),
        ("ok", SentimentLabel.NEUTRAL),
        ("Never again", SentimentLabel.NEGATIVE),
    ]
    assert sample.corrected == 2


async def test_reason_examples_are_comments_with_tapped_chips(
    session_factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await answered(session_factory, clock, "Forty minutes", 2, reasons=["long_wait"])
    await answered(session_factory, clock, "Rude and slow", 1, reasons=["rude_staff", "long_wait"])
    await answered(session_factory, clock, "No chips", 1)
    await answered(session_factory, clock, "A test", 1, reasons=["long_wait"], test_visit=True)
    async with session_factory() as session:
        examples = await ModelRepository(session).reason_examples()
    assert {(e.text, frozenset(e.codes)) for e in examples} == {
        ("Forty minutes", frozenset({"long_wait"})),
        ("Rude and slow", frozenset({"rude_staff", "long_wait"})),
    }


# -- judging a run -------------------------------------------------------------------------------


async def test_too_few_labels_store_nothing_and_say_so(
    session_factory: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    training: TrainingService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for text, score in chinese_comments(6):
        await answered(session_factory, clock, text, score)
    with caplog.at_level(logging.INFO, logger="bot.training"):
        [outcome] = await training.retrain(ModelKind.SENTIMENT)
    assert outcome.version is None and not outcome.active
    assert "Sentiment not retrained: 6 labelled comments" in caplog.text
    assert await runs(session_factory, ModelKind.SENTIMENT) == []


async def test_a_run_that_does_not_beat_the_baseline_is_kept_but_not_used(
    session_factory: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    training: TrainingService,
    classifier: AdaptiveClassifier,
) -> None:
    baseline = BaselineClassifier()
    for text, score in ENGLISH * 3:
        # The baseline reads every one of them right, so no model can do better.
        expected = SentimentLabel.POSITIVE if score >= 4 else SentimentLabel.NEGATIVE
        assert baseline.classify(text).label is expected, text
        await answered(session_factory, clock, text, score)

    [outcome] = await training.retrain(ModelKind.SENTIMENT)

    [run] = await runs(session_factory, ModelKind.SENTIMENT)
    assert (outcome.version, outcome.active) == (1, False)
    assert (run.version, run.active, run.examples) == (1, False, 30)
    assert run.metrics["learned_wins"] is False
    assert run.metrics["baseline"]["macro_f1"] == 1.0
    assert classifier.models.sentiment is None


async def test_old_runs_keep_their_record_but_give_up_their_model(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory.begin() as session:
        models = ModelRepository(session)
        ids = []
        for n in range(1, 7):
            run = await models.add_run(
                ModelKind.SENTIMENT,
                examples=10 * n,
                labels_until=None,
                metrics={"learned_wins": n == 2},
                payload=b"sentiment v%d" % n,
                trained_at=datetime(2026, 1, n, tzinfo=UTC),
            )
            ids.append(run.id)
        await models.activate(ModelKind.SENTIMENT, ids[1])
        await models.add_run(
            ModelKind.REASONS,
            examples=5,
            labels_until=None,
            metrics={},
            payload=b"reasons v1",
            trained_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        emptied = await models.drop_old_payloads(ModelKind.SENTIMENT, keep=3)
        again = await models.drop_old_payloads(ModelKind.SENTIMENT, keep=3)

    # v2 is in use and v4-v6 are the newest three: only v1 and v3 give up their model.
    assert (emptied, again) == (2, 0)
    sentiment = await runs(session_factory, ModelKind.SENTIMENT)
    assert {run.version: run.payload for run in sentiment} == {
        1: b"",
        2: b"sentiment v2",
        3: b"",
        4: b"sentiment v4",
        5: b"sentiment v5",
        6: b"sentiment v6",
    }
    assert [run.examples for run in sentiment] == [10, 20, 30, 40, 50, 60]  # the record stays
    assert sentiment[0].metrics == {"learned_wins": False}
    [reasons] = await runs(session_factory, ModelKind.REASONS)
    assert reasons.payload == b"reasons v1"  # another kind is not touched


async def test_training_keeps_the_models_of_its_newest_runs_only(
    session_factory: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    training: TrainingService,
) -> None:
    for text, score in ENGLISH * 3:
        await answered(session_factory, clock, text, score)
    for _ in range(KEEP_MODELS + 2):
        await training.retrain(ModelKind.SENTIMENT)

    stored = await runs(session_factory, ModelKind.SENTIMENT)
    assert len(stored) == KEEP_MODELS + 2
    kept = [run.version for run in stored if run.payload or run.active]
    assert kept == [run.version for run in stored][-KEEP_MODELS:]


async def test_a_run_that_wins_reads_chinese_and_is_versioned(
    session_factory: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    training: TrainingService,
    classifier: AdaptiveClassifier,
) -> None:
    complaint, praise = "服务态度很差，菜是冷的", "很好吃，服务很好"
    assert classifier.classify(complaint).label is SentimentLabel.UNKNOWN
    for text, score in chinese_comments(40):
        await answered(session_factory, clock, text, score)
    await answered(
        session_factory, clock, "太慢了，很难吃", None, corrected=SentimentLabel.NEGATIVE
    )

    [outcome] = await training.retrain(ModelKind.SENTIMENT)

    assert (outcome.version, outcome.active, outcome.examples) == (1, True, 41)
    [run] = await runs(session_factory, ModelKind.SENTIMENT)
    assert run.active and run.labels_until == clock.now()
    assert run.metrics["labels"] == {
        "total": 41,
        "corrected": 1,
        "from_scores": 40,
        "negative": 21,
        "neutral": 0,
        "positive": 20,
    }
    assert run.metrics["learned"]["macro_f1"] > run.metrics["baseline"]["macro_f1"]
    assert classifier.classify(complaint).label is SentimentLabel.NEGATIVE
    assert classifier.classify(praise).label is SentimentLabel.POSITIVE
    assert classifier.classify(complaint).language == "zh"
    # English stays with the baseline: the model never beat it there.
    assert (
        classifier.classify("The food was great").score
        == BaselineClassifier().classify("The food was great").score
    )

    clock.advance(hours=1)
    [again] = await training.retrain(ModelKind.SENTIMENT)
    assert (again.version, again.active) == (2, True)
    assert [r.active for r in await runs(session_factory, ModelKind.SENTIMENT)] == [False, True]


async def test_another_process_loads_the_active_model_and_picks_up_a_newer_one(
    session_factory: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    clock: FakeClock,
    training: TrainingService,
) -> None:
    for text, score in chinese_comments(40):
        await answered(session_factory, clock, text, score)
    elsewhere = AdaptiveClassifier()
    other = TrainingService(session_factory, queue, clock, elsewhere, zone=BERLIN, retrain_every=5)
    assert await other.load() is False  # nothing trained yet: the baseline serves
    assert elsewhere.models.sentiment is None

    await training.retrain(ModelKind.SENTIMENT)
    assert await other.load() is True
    assert elsewhere.classify("等了很久，非常失望").label is SentimentLabel.NEGATIVE
    first = elsewhere.models.sentiment_run
    assert await other.load() is False  # the same run: not read again

    await training.retrain(ModelKind.SENTIMENT)
    assert await other.load() is True
    assert elsewhere.models.sentiment_run not in (None, first)


def test_the_learned_model_is_used_only_where_it_proved_better() -> None:
    metrics = {
        "baseline": {"macro_f1": 0.4},
        "learned": {"macro_f1": 0.7},
        "by_language": {
            "en": {"baseline": {"macro_f1": 0.8}, "learned": {"macro_f1": 0.6}},
            "zh": {"baseline": {"macro_f1": 0.0}, "learned": {"macro_f1": 0.9}},
        },
    }
    use = use_of(metrics)
    assert use.languages == {"zh"} and use.unread
    assert not use_of({"baseline": {"macro_f1": 0.5}, "learned": {"macro_f1": 0.5}}).unread


# -- reasons from words --------------------------------------------------------------------------

LONG_WAIT = ["we waited forty minutes", "a long wait for a table", "waited an hour for food"]
RUDE = ["the waiter was rude to us", "rude staff at the till", "the manager was rude"]


async def test_a_reason_model_suggests_offered_reasons_for_words_without_chips(
    session_factory: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    training: TrainingService,
) -> None:
    conversation = ConversationService(
        session_factory, clock, training.classifier, ConversationPolicy(), learning=training
    )
    await conversation.ensure_reasons()
    for i in range(12):
        await answered(session_factory, clock, LONG_WAIT[i % 3], 2, reasons=["long_wait"])
        await answered(session_factory, clock, RUDE[i % 3], 1, reasons=["rude_staff"])

    [outcome] = await training.retrain(ModelKind.REASONS)
    assert (outcome.version, outcome.active) == (1, True)

    said = await conversation.message(
        TelegramProfile(user_id=80_001, first_name="Uma"), text="we waited forty minutes again"
    )
    async with session_factory() as session:
        answer = await session.get(Answer, said.answer_id)
    assert answer is not None and answer.suggested_reasons == ["long_wait"]

    # A hidden reason is never suggested.
    async with session_factory.begin() as session:
        reason = await session.scalar(select(Reason).where(Reason.code == "long_wait"))
        assert reason is not None
        reason.hidden = True
    said = await conversation.message(
        TelegramProfile(user_id=80_002, first_name="Ivo"), text="we waited forty minutes again"
    )
    async with session_factory() as session:
        answer = await session.get(Answer, said.answer_id)
    assert answer is not None and answer.suggested_reasons is None


# -- the jobs ------------------------------------------------------------------------------------


async def test_every_retrain_every_labels_queue_one_training(
    session_factory: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    training: TrainingService,
    queue: JobQueue,
) -> None:
    for text, score in chinese_comments(4):
        await answered(session_factory, clock, text, score)
    assert await training.label_added() is False  # 4 of 5
    assert await retrain_jobs(session_factory) == []

    async with session_factory.begin() as session:  # a staff correction is a label too
        session.add(AuditEntry(at=clock.now(), action=CORRECTION_ACTION, target="case:1"))
    other = TrainingService(
        session_factory, queue, clock, AdaptiveClassifier(), zone=BERLIN, retrain_every=5
    )
    # Two workers see the count reach 5 at once: one job.
    assert await training.label_added() is True
    assert await other.label_added() is True
    [job] = await retrain_jobs(session_factory)
    assert job.due_at == clock.now() and job.state is JobState.PENDING
    assert job.dedupe_key == "retrain:labels:0:1"


async def test_the_nightly_training_runs_at_three_and_schedules_the_next_night(
    session_factory: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    clock: FakeClock,
    training: TrainingService,
    queue: JobQueue,
) -> None:
    assert next_nightly(clock.now(), BERLIN) == datetime(2026, 1, 6, 3, 0, tzinfo=BERLIN)
    assert next_nightly(datetime(2026, 1, 6, 1, 0, tzinfo=UTC), BERLIN) == datetime(
        2026, 1, 6, 3, 0, tzinfo=BERLIN
    )
    for text, score in chinese_comments(40):
        await answered(session_factory, clock, text, score)
    await training.schedule_nightly()
    await training.schedule_nightly()  # at every start, and by every worker: still one
    [job] = await retrain_jobs(session_factory)
    assert job.due_at == datetime(2026, 1, 6, 2, 0, tzinfo=UTC)

    scheduler = Scheduler(queue, clock, SchedulerConfig(poll_interval=0.05))
    training.register(scheduler)
    clock.set(datetime(2026, 1, 6, 2, 0, 1, tzinfo=UTC))
    assert await scheduler.run_due() == 1

    jobs = await retrain_jobs(session_factory)
    assert [(j.state, j.due_at) for j in jobs] == [
        (JobState.DONE, datetime(2026, 1, 6, 2, 0, tzinfo=UTC)),
        (JobState.PENDING, datetime(2026, 1, 7, 2, 0, tzinfo=UTC)),
    ]
    assert [r.active for r in await runs(session_factory, ModelKind.SENTIMENT)] == [True]
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(TrainedModel)) == 1


async def test_a_training_under_way_makes_a_second_one_a_no_op(
    session_factory: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    training: TrainingService,
) -> None:
    for text, score in chinese_comments(40):
        await answered(session_factory, clock, text, score)
    first, second = await asyncio.gather(
        training.retrain(ModelKind.SENTIMENT), training.retrain(ModelKind.SENTIMENT)
    )
    assert sorted([first[0].note, second[0].note]) == [
        "in use",
        "skipped: a training is under way",
    ]
    assert len(await runs(session_factory, ModelKind.SENTIMENT)) == 1
