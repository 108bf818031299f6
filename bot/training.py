"""The life of the learned models inside the running bot: trained, judged, switched on, used.

bot.learning is the pure machine learning (features, fitting, validation). This module decides
when to train, whether a run may be used, and hands the models in use to the conversation.

- Labels. Every comment given with a score teaches sentiment: the customer's own score gives
  its label (bot.learning.label_from_score); a staff correction from the case card is stronger
  and wins. Unsolicited feedback has no score, so it teaches only once corrected. The reason
  chips a customer tapped label the comment they wrote with them. Test surveys and customers
  who erased their data teach nothing (storage.model_repository).
- Training runs as a job (`RETRAIN`): nightly at 03:00 in TIMEZONE, and once RETRAIN_EVERY new
  labels have come in since the last run. Both have dedupe keys, so several workers train once.
  The fitting runs in a worker thread, so the event loop keeps serving customers meanwhile; one
  training at a time per process.
- Judging. bot.learning.validate_sentiment holds out a fifth of the labels, trains on the rest
  and scores the TextBlob baseline and the learned model on the held-out part. Every run is
  stored with those figures and with which labels it saw (how many, up to when); it is switched
  on only when it beats the baseline there, and is then trained again on all the labels. A
  reason model is switched on when bot.learning could train one and its held-out figures show
  it gets something right (there is no baseline for reasons: none are suggested without it).
- Use. `AdaptiveClassifier` is the conversation's classifier. Per text, it uses the learned
  model for the languages where that model beat the baseline on the held-out part, and for any
  language the baseline cannot read at all (the baseline says UNKNOWN) when it beat the
  baseline overall; otherwise the baseline. So TextBlob stays the cold start for English, and
  Chinese (which the baseline cannot read) is read as soon as a model has learned it. The
  models in use are one immutable `LearnedModels`, swapped by one attribute assignment: no
  lock on the path every comment takes.
- Loading. The active models are loaded at start, before the first update, and each process
  looks every SETTINGS_REFRESH seconds whether another one switched on a newer run.
  scikit-learn takes about a second to import, so bot.learning is imported only when there is
  a model to load or a training to run: with no model the bot starts as fast as before.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.scheduler import Scheduler
from bot.sentiment import (
    BaselineClassifier,
    Classifier,
    Sentiment,
    detect_language,
    read_by_emoji,
)
from storage.jobs import ClaimedJob, JobQueue
from storage.model_repository import LabelledComment, ModelRepository
from storage.models import ModelKind, SentimentLabel, TrainedModel

if TYPE_CHECKING:
    from bot.learning import ReasonModel, SentimentModel, Validation

__all__ = [
    "KEEP_MODELS",
    "NIGHTLY_AT",
    "RETRAIN",
    "AdaptiveClassifier",
    "LearnedModels",
    "Outcome",
    "TrainingService",
    "next_nightly",
    "use_of",
]

log = logging.getLogger(__name__)

#: Runs per kind whose fitted model is kept besides the active one (to look at or switch back to);
#: older runs keep only their record and metrics.
KEEP_MODELS = 3
#: The job kind of a training run (payload: {"nightly": true} for the nightly one).
RETRAIN = "model_retrain"
#: When the nightly training runs, in TIMEZONE: the quietest hour for most businesses.
NIGHTLY_AT = time(3, 0)
#: At most this many reasons are suggested for one comment.
SUGGESTIONS = 3


# ---------------------------------------------------------------------------- the models in use


@dataclass(frozen=True, slots=True)
class LearnedModels:
    """The learned models one process uses now, and where they may be used."""

    sentiment: SentimentModel | None = None
    sentiment_run: int | None = None  # the trained_models row it came from
    # Languages (bot.sentiment codes; "none" for text without letters) where it beat the baseline.
    languages: frozenset[str] = frozenset()
    # It beat the baseline overall, so it reads what the baseline cannot read at all.
    unread: bool = False
    reasons: ReasonModel | None = None
    reasons_run: int | None = None


@dataclass(frozen=True, slots=True)
class Use:
    languages: frozenset[str]
    unread: bool


def use_of(metrics: dict[str, Any]) -> Use:
    """Where a sentiment run may be used, from the held-out figures stored with it."""

    def f1(figures: Any) -> float:
        return float(figures.get("macro_f1") or 0.0) if isinstance(figures, dict) else 0.0

    by_language = metrics.get("by_language") or {}
    languages = frozenset(
        language
        for language, figures in by_language.items()
        if isinstance(figures, dict) and f1(figures.get("learned")) > f1(figures.get("baseline"))
    )
    return Use(languages, f1(metrics.get("learned")) > f1(metrics.get("baseline")))


class AdaptiveClassifier:
    """The conversation's classifier: the learned model where it proved better, else the
    baseline (see the module docstring). Also suggests reasons for words without chips."""

    def __init__(self, baseline: Classifier | None = None) -> None:
        self.baseline = baseline or BaselineClassifier()
        self.models = LearnedModels()

    def classify(self, text: str) -> Sentiment:
        models = self.models  # one read: a swap meanwhile does not mix two versions
        if models.sentiment is None:
            return self.baseline.classify(text)
        # The language decides who reads, so each comment is read once: the learned model where
        # it won, and where the baseline would only say UNKNOWN (not English and not read by
        # its emoji, which is known without scoring); the baseline everywhere else.
        language = detect_language(text)
        if (language or "none") in models.languages or (
            models.unread and language != "en" and not read_by_emoji(text)
        ):
            try:
                return models.sentiment.classify(text)
            except Exception:  # a model must never cost a customer their answer
                log.exception("The learned sentiment model failed; the baseline reads this one")
        return self.baseline.classify(text)

    def suggest_reasons(self, text: str) -> list[str]:
        """Reason codes the words suggest, best first ([] without a reason model)."""
        model = self.models.reasons
        if model is None or not text:
            return []
        try:
            return model.suggest(text, limit=SUGGESTIONS)
        except Exception:
            log.exception("The reason model failed; no reasons suggested")
            return []


# ------------------------------------------------------------------------------------- training


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one training of one kind did."""

    kind: ModelKind
    examples: int
    version: int | None = None  # None: nothing stored (too few labels, or skipped)
    active: bool = False
    note: str = ""


def next_nightly(now: datetime, zone: tzinfo) -> datetime:
    """The next NIGHTLY_AT in ``zone`` after ``now``."""
    local = now.astimezone(zone)
    at = datetime.combine(local.date(), NIGHTLY_AT, tzinfo=zone)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), NIGHTLY_AT, tzinfo=zone)
    return at


def nightly_key(at: datetime, zone: tzinfo) -> str:
    return f"retrain:nightly:{at.astimezone(zone):%Y-%m-%d}"


@dataclass
class _Sample:
    texts: list[str] = field(default_factory=list)
    labels: list[SentimentLabel] = field(default_factory=list)
    corrected: int = 0


def _labelled(rows: Sequence[LabelledComment]) -> _Sample:
    from bot.learning import label_from_score

    sample = _Sample()
    for row in rows:
        if row.corrected is not None:
            label = row.corrected
            sample.corrected += 1
        elif row.scale is not None and row.score is not None:
            try:
                label = label_from_score(row.scale, row.score)
            except ValueError:  # a score outside its scale: not a label
                continue
        else:
            continue
        sample.texts.append(row.text)
        sample.labels.append(label)
    return sample


def _finite(value: float) -> float | None:
    """JSON has no infinity (PostgreSQL refuses it): a rate measured over no time is None."""
    return round(value, 4) if math.isfinite(value) else None


def _scores(scores: Any) -> dict[str, Any]:
    return {
        "accuracy": _finite(scores.accuracy),
        "macro_f1": _finite(scores.macro_f1),
        "texts_per_s": _finite(scores.texts_per_s),
        "n": scores.n,
    }


def sentiment_metrics(validation: Validation, sample: _Sample) -> dict[str, Any]:
    """What a sentiment run is stored with: its labels and its held-out figures."""
    counts = Counter(label.value for label in sample.labels)
    return {
        "labels": {
            "total": len(sample.labels),
            "corrected": sample.corrected,
            "from_scores": len(sample.labels) - sample.corrected,
            **{label: counts.get(label, 0) for label in ("negative", "neutral", "positive")},
        },
        "train": validation.train,
        "test": validation.test,
        "baseline": _scores(validation.baseline),
        "learned": _scores(validation.learned),
        "by_language": {
            language: {"baseline": _scores(base), "learned": _scores(learned)}
            for language, (base, learned) in validation.by_language.items()
        },
        "learned_wins": validation.learned_wins,
    }


def reasons_useful(figures: dict[str, Any]) -> bool:
    """Whether a reason model's held-out figures show it gets something right. With no
    figures to go by, a model bot.learning could train at all is used."""
    judged = [figures[key] for key in ("precision_at_1", "micro_f1") if key in figures]
    return all(isinstance(value, int | float) and value > 0 for value in judged)


class TrainingService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobQueue,
        clock: Clock,
        classifier: AdaptiveClassifier,
        *,
        zone: tzinfo,
        retrain_every: int,
        seed: int = 0,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self._clock = clock
        self.classifier = classifier
        self.zone = zone
        self.retrain_every = retrain_every
        self._seed = seed
        self._training = asyncio.Lock()
        # The last RETRAIN_EVERY training this process queued (its dedupe key).
        self._queued: str | None = None
        # Active runs this process could not read: tried once, not again every refresh.
        self._unreadable: set[int] = set()

    def register(self, scheduler: Scheduler) -> None:
        scheduler.register(RETRAIN, self.handle_retrain)

    def suggest_reasons(self, text: str) -> list[str]:
        return self.classifier.suggest_reasons(text)

    # -- jobs -----------------------------------------------------------------------------------

    async def schedule_nightly(self) -> datetime:
        """Make sure the next nightly training is in the queue (once, whatever the workers)."""
        at = next_nightly(self._clock.now(), self.zone)
        await self._jobs.schedule(
            RETRAIN, at, {"nightly": True}, dedupe_key=nightly_key(at, self.zone)
        )
        return at

    async def handle_retrain(self, job: ClaimedJob) -> str:
        try:
            outcomes = await self.retrain()
        finally:
            if job.payload.get("nightly"):
                await self.schedule_nightly()
        return ", ".join(f"{o.kind.value}: {o.note}" for o in outcomes)

    async def label_added(self) -> bool:
        """A label was stored (a comment with a score, a staff correction): queue a training
        once RETRAIN_EVERY labels came in since the last run. True when one was queued."""
        if self.retrain_every <= 0:
            return False
        try:
            async with self._sessions() as session:
                version, count = await ModelRepository(session).label_progress(ModelKind.SENTIMENT)
            if count < self.retrain_every:
                return False
            # One key per last run and per RETRAIN_EVERY labels: every worker that sees the
            # count cross the line queues the same job, and a run that stored nothing (too few
            # labels) is tried again after the next RETRAIN_EVERY.
            key = f"retrain:labels:{version}:{count // self.retrain_every}"
            if key != self._queued:  # queued from here already: the queue would keep one
                # Marked before the await: comments handled meanwhile need not queue it too.
                self._queued = key
                try:
                    await self._jobs.schedule(
                        RETRAIN, self._clock.now(), {"labels": count}, dedupe_key=key
                    )
                except BaseException:
                    self._queued = None
                    raise
        except Exception:  # a trigger must never cost the customer their answer
            log.warning("Could not check whether to retrain", exc_info=True)
            return False
        return True

    # -- training -------------------------------------------------------------------------------

    async def retrain(self, kind: ModelKind | None = None) -> list[Outcome]:
        """Train, judge, store and (when it wins) switch on a model of ``kind`` (None: both).
        A training already under way in this process makes this one a no-op."""
        kinds = [kind] if kind is not None else [ModelKind.SENTIMENT, ModelKind.REASONS]
        if self._training.locked():
            log.info("A training is already under way in this process; this one is left out")
            return [Outcome(k, 0, note="skipped: a training is under way") for k in kinds]
        async with self._training:
            outcomes = []
            for each in kinds:
                if each is ModelKind.SENTIMENT:
                    outcomes.append(await self._retrain_sentiment())
                else:
                    outcomes.append(await self._retrain_reasons())
            return outcomes

    async def _retrain_sentiment(self) -> Outcome:
        import bot.learning as learning

        until = self._clock.now()
        async with self._sessions() as session:
            rows = await ModelRepository(session).sentiment_examples()
        sample = _labelled(rows)
        kinds = set(sample.labels)
        try:
            model, validation = await asyncio.to_thread(
                learning.validate_sentiment, sample.texts, sample.labels, seed=self._seed
            )
        except ValueError as error:
            log.info(
                "Sentiment not retrained: %d labelled comments (%d sentiments); %s",
                len(sample.texts),
                len(kinds),
                error,
            )
            return Outcome(ModelKind.SENTIMENT, len(sample.texts), note=f"too few labels: {error}")
        wins = validation.learned_wins
        if wins:  # the held-out part did its job; the model in use learns from every label
            model = await asyncio.to_thread(
                learning.train_sentiment, sample.texts, sample.labels, seed=self._seed
            )
        metrics = sentiment_metrics(validation, sample)
        payload = await asyncio.to_thread(model.to_bytes)
        run = await self._store(
            ModelKind.SENTIMENT, len(sample.texts), until, metrics, payload, activate=wins
        )
        log.info(
            "Sentiment model v%d from %d labels: macro-F1 %.3f learned vs %.3f baseline on %d "
            "held out; %s",
            run.version,
            len(sample.texts),
            validation.learned.macro_f1,
            validation.baseline.macro_f1,
            validation.test,
            "in use" if wins else "kept for the record, not used",
        )
        if wins:
            self._use_sentiment(model, run.id, metrics)
        return Outcome(
            ModelKind.SENTIMENT,
            len(sample.texts),
            run.version,
            wins,
            note="in use" if wins else "loses to the baseline",
        )

    async def _retrain_reasons(self) -> Outcome:
        import bot.learning as learning

        until = self._clock.now()
        async with self._sessions() as session:
            rows = await ModelRepository(session).reason_examples()
        texts = [row.text for row in rows]
        codes = [list(row.codes) for row in rows]
        model, figures = None, {}
        if len(texts) >= learning.MIN_EXAMPLES:
            try:
                model, figures = await asyncio.to_thread(
                    learning.validate_reasons, texts, codes, seed=self._seed
                )
            except ValueError as error:
                log.info("Reasons not retrained: %s", error)
        if model is None:
            log.info("Reasons not retrained: %d comments with tapped reasons", len(texts))
            return Outcome(ModelKind.REASONS, len(texts), note="too few labels")
        useful = reasons_useful(figures)
        if useful:
            model = (
                await asyncio.to_thread(learning.train_reasons, texts, codes, seed=self._seed)
                or model
            )
        metrics = {
            "labels": {"total": len(texts), **Counter(c for row in codes for c in row)},
            "held_out": {key: _finite(float(value)) for key, value in figures.items()},
            "codes": list(model.codes),
        }
        payload = await asyncio.to_thread(model.to_bytes)
        run = await self._store(ModelKind.REASONS, len(texts), until, metrics, payload, useful)
        log.info(
            "Reason model v%d from %d comments with reasons; %s",
            run.version,
            len(texts),
            "in use" if useful else "kept for the record, not used",
        )
        if useful:
            self.classifier.models = replace(
                self.classifier.models, reasons=model, reasons_run=run.id
            )
        return Outcome(
            ModelKind.REASONS, len(texts), run.version, useful, "in use" if useful else "not used"
        )

    async def _store(
        self,
        kind: ModelKind,
        examples: int,
        until: datetime,
        metrics: dict[str, Any],
        payload: bytes,
        activate: bool,
    ) -> TrainedModel:
        async with self._sessions.begin() as session:
            models = ModelRepository(session)
            run = await models.add_run(
                kind,
                examples=examples,
                labels_until=until,
                metrics=metrics,
                payload=payload,
                trained_at=self._clock.now(),
            )
            if activate:
                await models.activate(kind, run.id)
            await models.drop_old_payloads(kind, keep=KEEP_MODELS)
        return run

    def _use_sentiment(self, model: SentimentModel, run_id: int, metrics: dict[str, Any]) -> None:
        use = use_of(metrics)
        self.classifier.models = replace(
            self.classifier.models,
            sentiment=model,
            sentiment_run=run_id,
            languages=use.languages,
            unread=use.unread,
        )

    # -- loading --------------------------------------------------------------------------------

    async def load(self) -> bool:
        """Use the active runs (at start, and when another process switched on a newer one);
        True when anything changed. A run this process cannot read (e.g. trained under another
        scikit-learn) is logged once and left: what served before goes on serving."""
        async with self._sessions() as session:
            models = ModelRepository(session)
            active = {kind: await models.active_run(kind) for kind in ModelKind}
        changed = False
        for kind, run in active.items():
            in_use = (
                self.classifier.models.sentiment_run
                if kind is ModelKind.SENTIMENT
                else self.classifier.models.reasons_run
            )
            run_id = run.id if run is not None else None
            if run_id == in_use or run_id in self._unreadable:
                continue
            changed = True
            if kind is ModelKind.SENTIMENT:
                if run is None:
                    self.classifier.models = replace(
                        self.classifier.models, sentiment=None, sentiment_run=None
                    )
                    continue
                stored = await self._fetch(kind)
                model = await self._read(stored, "SentimentModel")
                if stored is not None and model is not None:
                    self._use_sentiment(model, stored.id, stored.metrics)
            else:
                if run is None:
                    self.classifier.models = replace(
                        self.classifier.models, reasons=None, reasons_run=None
                    )
                    continue
                stored = await self._fetch(kind)
                model = await self._read(stored, "ReasonModel")
                if stored is not None and model is not None:
                    self.classifier.models = replace(
                        self.classifier.models, reasons=model, reasons_run=stored.id
                    )
        return changed

    async def _fetch(self, kind: ModelKind) -> TrainedModel | None:
        async with self._sessions() as session:
            return await ModelRepository(session).active(kind)

    async def _read(self, run: TrainedModel | None, cls_name: str) -> Any:
        if run is None:
            return None

        def read() -> Any:
            import bot.learning as learning

            return getattr(learning, cls_name).from_bytes(run.payload)

        try:
            model = await asyncio.to_thread(read)
        except ValueError as error:
            self._unreadable.add(run.id)
            log.warning(
                "The active %s model v%d cannot be read here (%s); the baseline serves",
                run.kind.value,
                run.version,
                error,
            )
            return None
        log.info("Using the %s model v%d (%d labels)", run.kind.value, run.version, run.examples)
        return model
