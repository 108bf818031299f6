"""Admins in their private chat: /settings, /set, /reset, /admins, /audit, end to end.

Each setting's test checks its effect where a customer or staff member would notice it: the next
survey's buttons, the apology after a score, the review invitation, the survey's due time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import texts
from bot.app import Application
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from bot.surveys import SURVEY_REMINDER
from bot.visit_input import CustomerIn, VisitIn
from handlers import admin
from storage.models import (
    Answer,
    AnswerStage,
    AuditEntry,
    Case,
    Job,
    Survey,
    SurveyScale,
    VisitSource,
)
from tests.e2e.conftest import BUSINESS, QUICK, UNPACED, ask, customers, e2e_settings, running
from tests.e2e.conftest import visits_due_now as due_now
from tests.e2e.test_conversation import next_message, score_data

BOSS = 5_100_001  # an admin through ADMIN_IDS
CARL = 5_100_002  # a customer, later an admin granted in the chat
REVIEW = "https://example.com/review-us"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # survey_delay comes from the environment here, so /settings has all three sources to show.
    return e2e_settings(
        database_url, admin_ids=[BOSS], survey_delay="3h", worker_poll_interval=0.05
    )


@pytest.fixture
async def app(make_app, emulator: Emulator) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    async with running(make_app(limiter=RateLimiter(UNPACED, QUICK))) as started:
        yield started


@pytest.fixture
def boss(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Bea", user_id=BOSS)


@pytest.fixture
def carl(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Carl", user_id=CARL)


def unknown_command_reply(first_name: str) -> str:
    help_ = texts.render(texts.HELP, business=BUSINESS)
    return f"{texts.render(texts.UNKNOWN_COMMAND, name=first_name)}\n\n{help_}"


async def audit_rows(app: Application) -> list[AuditEntry]:
    async with app.session_factory() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def setting_block(listing: str, name: str) -> str:
    [block] = [b for b in listing.split("\n\n") if b.startswith(f"{name} = ")]
    return block


# -- who may -------------------------------------------------------------------------------------


async def test_a_customer_gets_what_an_unknown_command_gets(
    app: Application, telegram_bot: BotAccount, carl: SimUser
) -> None:
    expected = unknown_command_reply("Carl")
    assert await ask(carl, telegram_bot, "/frobnicate") == expected
    for command in (
        "/settings",
        "/set survey_delay 0",
        "/reset survey_delay",
        "/admins",
        f"/admins add {CARL}",
        "/audit",
    ):
        assert await ask(carl, telegram_bot, command) == expected, command
    assert app.live.view("survey_delay").value == "3h"
    assert not await app.roles.is_admin(CARL)
    assert await audit_rows(app) == []


async def test_an_admin_typing_a_lone_slash_gets_the_unknown_command_answer(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    for text in ("/", "/ ", "/ settings"):
        assert await ask(boss, telegram_bot, text) == unknown_command_reply("Bea"), repr(text)


# -- /settings, /set, /reset -----------------------------------------------------------------------


async def test_settings_shows_value_default_and_source_and_set_wins_until_reset(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    listing = await ask(boss, telegram_bot, "/settings")
    assert listing.startswith(admin.SETTINGS_HEADING)
    assert len(listing) <= 4096
    names = [block.split(" = ")[0] for block in listing.split("\n\n")[1:]]
    assert names == list(admin.RUNTIME)
    assert setting_block(listing, "survey_delay").splitlines()[:2] == [
        "survey_delay = 3h",
        "   source: the environment · default: 2h",
    ]
    assert setting_block(listing, "quiet_hours").splitlines()[:2] == [
        "quiet_hours = 21:00-09:00",
        "   source: the default · default: 21:00-09:00",
    ]
    # Secrets and process settings are not runtime settings and never appear.
    for hidden in ("bot_token", "database_url", "api_keys", "link_secret", "internal."):
        assert hidden not in listing

    assert await ask(boss, telegram_bot, "/set survey_delay 30m") == (
        "survey_delay is now 30m (was 3h).\n/reset survey_delay goes back to 3h (from the "
        "environment)."
    )
    assert await ask(boss, telegram_bot, "/set survey_delay 30m") == (
        "survey_delay was already 30m; nothing changed."
    )
    listing = await ask(boss, telegram_bot, "/settings")
    assert setting_block(listing, "survey_delay").splitlines()[1] == (
        "   source: set in the chat · default: 2h"
    )
    assert await ask(boss, telegram_bot, "/set quiet_hours off") == (
        "quiet_hours is now none (no quiet hours) (was 21:00-09:00).\n"
        "/reset quiet_hours goes back to 21:00-09:00 (default)."
    )

    assert await ask(boss, telegram_bot, "/reset survey_delay") == (
        "survey_delay is back to 3h (from the environment)."
    )
    assert await ask(boss, telegram_bot, "/reset survey_delay") == (
        "survey_delay was not changed in the chat; it stays 3h (from the environment)."
    )
    actions = [
        (row.action, row.target, row.old_value, row.new_value) for row in await audit_rows(app)
    ]
    assert actions == [
        ("setting.set", "survey_delay", "3h", "30m"),
        ("setting.set", "quiet_hours", "21:00-09:00", "none (no quiet hours)"),
        ("setting.reset", "survey_delay", "30m", "3h"),
    ]
    assert {row.actor_id for row in await audit_rows(app)} == {BOSS}


async def test_wrong_values_name_what_is_allowed_and_change_nothing(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    answers = {
        "/set survey_delay 30": (
            "survey_delay stays 3h: survey_delay: must be a duration like 2h, 30m or 30d, or 0; "
            "a number needs a unit: d, h, m or s (got '30')"
        ),
        "/set low_score 12": "low_score stays 3 (the csat default): low_score: must be a whole "
        "number from 0 to 9",
        "/set low_score 5": "low_score stays 3 (the csat default): low_score must be 1-4 with "
        "survey_scale=csat",
        "/set survey_scale stars": "survey_scale stays csat: survey_scale: must be one of 'csat' "
        "or 'nps'",
        "/set timezone Mars/Olympus": "timezone stays UTC: timezone: must be an IANA time zone "
        "such as Europe/Berlin or UTC (got 'Mars/Olympus')",
        "/set quiet_hours 25:00-07:00": "quiet_hours stays 21:00-09:00: quiet_hours: hours run "
        "00-23 and minutes 00-59 (got '25:00-07:00')",
        "/set review_url example.com": "review_url stays none (no review invitation): review_url:"
        " must be an http:// or https:// URL, or empty for none",
        "/set survey_expiry none": "survey_expiry stays 3d: survey_expiry cannot be empty",
    }
    for command, expected in answers.items():
        assert await ask(boss, telegram_bot, command) == expected, command

    assert await ask(boss, telegram_bot, "/set survey_dalay 1h") == "\n".join(
        [
            "There is no setting 'survey_dalay' that can be changed in the chat.",
            "Did you mean survey_delay?",
            admin.SET_USAGE,
        ]
    )
    assert (await ask(boss, telegram_bot, "/set bot_token 1:abc")).startswith(
        "There is no setting 'bot_token'"
    )
    for usage in ("/set", "/set survey_delay", "/set survey_delay   "):
        assert await ask(boss, telegram_bot, usage) == admin.SET_USAGE, usage
    for usage in ("/reset", "/reset survey_delay quiet_hours"):
        assert await ask(boss, telegram_bot, usage) == admin.RESET_USAGE, usage
    assert await ask(boss, telegram_bot, "/audit everything") == admin.AUDIT_USAGE

    assert app.live.current.survey_delay == timedelta(hours=3)
    assert app.live.current.low_score is None
    assert await audit_rows(app) == []


async def test_each_setting_takes_effect_on_the_next_survey_and_answer(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    await ask(boss, telegram_bot, "/set survey_delay 0")
    await ask(boss, telegram_bot, "/set quiet_hours off")
    await ask(boss, telegram_bot, "/set survey_scale nps")
    await ask(boss, telegram_bot, "/set low_score 8")
    await ask(boss, telegram_bot, f"/set review_url {REVIEW}")
    await ask(boss, telegram_bot, "/set business_name Noodle Bar")

    [dora, ed] = await customers(app, emulator, telegram_bot, 2, prefix="Dora")
    await due_now(app, [dora, ed])
    await emulator.wait_for(lambda: dora.inbox(telegram_bot) and ed.inbox(telegram_bot), 10)

    # NPS: eleven buttons, 0 to 10.
    survey = dora.inbox(telegram_bot)[0]
    assert [b["text"] for b in survey.buttons] == [str(n) for n in range(11)]

    # 8 is low now: an apology and the reason chips, not thanks.
    await dora.tap(telegram_bot, survey, score_data(survey, 8))
    apology = await next_message(dora, telegram_bot, 2)
    assert "Done" in [b["text"] for b in apology.buttons]

    # 10 is high: thanks, then the review invitation with the business's new name.
    other = ed.inbox(telegram_bot)[0]
    await ed.tap(telegram_bot, other, score_data(other, 10))
    thanks = await next_message(ed, telegram_bot, 2)
    await ed.tap(telegram_bot, thanks, label="Skip")
    invitation = await next_message(ed, telegram_bot, 4)
    assert invitation.text == texts.render(texts.REVIEW_INVITATION, business="Noodle Bar")
    assert invitation.buttons == [{"text": "Write a review", "url": REVIEW}]
    assert await ask(ed, telegram_bot, "/help") == texts.render(texts.HELP, business="Noodle Bar")

    async with app.session_factory() as session:
        scored = {a.score: a.stage for a in await session.scalars(select(Answer))}
    assert scored[8] is not AnswerStage.DONE


async def test_survey_delay_and_quiet_hours_set_in_the_chat_time_the_next_survey(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    await ask(boss, telegram_bot, "/set survey_delay 45m")
    await ask(boss, telegram_bot, "/set quiet_hours off")
    [fay] = await customers(app, emulator, telegram_bot, 1, prefix="Fay")
    now = app.clock.now()
    await app.visits.record(
        VisitIn(
            visit_id="visit-fay",
            customer=CustomerIn(telegram_user_id=fay.id),
            occurred_at=now,
            source=VisitSource.API,
            location="Downtown",
        )
    )
    async with app.session_factory() as session:
        survey = await session.scalar(select(Survey))
    assert survey is not None
    assert abs(survey.due_at - (now + timedelta(minutes=45))) < timedelta(seconds=1)


async def test_settings_set_in_the_chat_survive_a_restart(
    make_app, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    emulator.limits = Limits.off()
    async with running(make_app(limiter=RateLimiter(UNPACED, QUICK))):
        await ask(boss, telegram_bot, "/set sla_first_response 2h")
        await ask(boss, telegram_bot, "/set timezone Europe/Berlin")
    async with running(make_app(limiter=RateLimiter(UNPACED, QUICK))) as again:
        assert again.live.view("sla_first_response").value == "2h"
        assert again.cases.policy.zone.key == "Europe/Berlin"
        assert again.conversation.policy.sla_first_response == timedelta(hours=2)
        listing = await ask(boss, telegram_bot, "/settings")
        assert setting_block(listing, "timezone").splitlines()[:2] == [
            "timezone = Europe/Berlin",
            "   source: set in the chat · default: UTC",
        ]


# -- /admins ---------------------------------------------------------------------------------------


async def test_admins_are_added_listed_and_removed_but_never_the_last(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, carl: SimUser
) -> None:
    await ask(carl, telegram_bot, "/start")  # so Telegram tells the bot Carl's name
    assert await ask(boss, telegram_bot, f"/admins add {CARL}") == admin.ADMIN_ADDED.format(
        who=str(CARL)
    )
    assert carl.inbox(telegram_bot)[-1].text == admin.ADMIN_WELCOME
    assert await ask(boss, telegram_bot, f"/admins add {CARL}") == admin.ADMIN_ALREADY.format(
        who=str(CARL)
    )
    listing = await ask(boss, telegram_bot, "/admins list")
    assert listing.splitlines()[:3] == [
        admin.ADMINS_HEADING,
        f"1. Bea ({BOSS}) — from ADMIN_IDS",
        f"2. Carl ({CARL}) — added in the chat",
    ]
    # Carl may now do what admins do.
    assert (await ask(carl, telegram_bot, "/settings")).startswith(admin.SETTINGS_HEADING)

    assert await ask(carl, telegram_bot, f"/admins remove {BOSS}") == (
        admin.ADMIN_CONFIGURED_STAYS.format(who=str(BOSS))
    )
    assert await ask(boss, telegram_bot, f"/admins remove {CARL}") == admin.ADMIN_REMOVED.format(
        who=str(CARL)
    )
    assert await ask(boss, telegram_bot, f"/admins remove {CARL}") == admin.ADMIN_NOT_ONE.format(
        who=str(CARL)
    )
    assert await ask(carl, telegram_bot, "/settings") == unknown_command_reply("Carl")

    for usage in ("/admins frob", "/admins add", "/admins add carl", "/admins add 1 2"):
        assert await ask(boss, telegram_bot, usage) == admin.ADMINS_USAGE, usage
    actions = [(row.action, row.target) for row in await audit_rows(app)]
    assert actions == [("admin.add", str(CARL)), ("admin.remove", str(CARL))]


async def test_an_admin_is_added_by_replying_to_a_forwarded_message(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, carl: SimUser
) -> None:
    forwarded = await boss.forward(telegram_bot, "Hi, it's Carl from the front desk", origin=carl)
    await asyncio.sleep(0.2)
    before = len(boss.inbox(telegram_bot))
    await boss.send(telegram_bot, "/admins add", reply_to=forwarded)
    await emulator.wait_for(lambda: len(boss.inbox(telegram_bot)) > before, timeout=10)
    assert boss.inbox(telegram_bot)[before].text == admin.ADMIN_ADDED.format(who=f"Carl ({CARL})")
    assert await app.roles.is_admin(CARL)

    hidden = await boss.forward(telegram_bot, "hello", origin="Someone Private")
    await asyncio.sleep(0.2)
    before = len(boss.inbox(telegram_bot))
    await boss.send(telegram_bot, "/admins add", reply_to=hidden)
    await emulator.wait_for(lambda: len(boss.inbox(telegram_bot)) > before, timeout=10)
    assert boss.inbox(telegram_bot)[before].text == admin.ADMIN_HIDDEN


async def test_the_last_admin_cannot_be_removed(
    database_url: str, emulator: Emulator, telegram_bot: BotAccount, carl: SimUser
) -> None:
    emulator.limits = Limits.off()
    app = Application(
        e2e_settings(database_url),  # no ADMIN_IDS: Carl, granted in the chat, is the only one
        token=telegram_bot.token,
        api_url=emulator.url,
        limiter=RateLimiter(UNPACED, QUICK),
    )
    async with running(app):
        assert await app.roles.grant(CARL, by=CARL, by_name="setup")
        assert await ask(carl, telegram_bot, f"/admins remove {CARL}") == admin.ADMIN_LAST.format(
            who=str(CARL)
        )
        assert await app.roles.is_admin(CARL)


# -- /audit ----------------------------------------------------------------------------------------


async def test_audit_shows_the_last_twenty_changes_newest_first(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    assert await ask(boss, telegram_bot, "/audit") == admin.AUDIT_NONE
    for minutes in range(1, 23):
        await ask(boss, telegram_bot, f"/set survey_delay {minutes}m")
    long_name = ("Long name " * 7)[:64]  # the longest allowed: the audit line shows 59 and "…"
    await ask(boss, telegram_bot, f"/set business_name {long_name}")
    shown = (await ask(boss, telegram_bot, "/audit")).splitlines()
    assert shown[0] == admin.AUDIT_HEADING.format(count=20)
    assert len(shown) == 21
    assert shown[1].endswith(f"· Bea · setting.set business_name: {BUSINESS} → {long_name[:59]}…")
    assert shown[2].endswith("· Bea · setting.set survey_delay: 21m → 22m")
    assert shown[20].endswith("· Bea · setting.set survey_delay: 3m → 4m")  # older ones left out


async def test_reminder_and_case_deadline_follow_the_settings_set_in_the_chat(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    for command in (
        "/set survey_delay 0",
        "/set quiet_hours off",
        "/set survey_reminder 5h",
        "/set sla_first_response 2h",
    ):
        assert "is now" in await ask(boss, telegram_bot, command), command
    [gus] = await customers(app, emulator, telegram_bot, 1, prefix="Gus")
    await due_now(app, [gus])
    await emulator.wait_for(lambda: gus.inbox(telegram_bot), timeout=10)
    # The message is out a moment before the bot records it as sent and plans the reminder.
    for _ in range(100):
        async with app.session_factory() as session:
            survey = await session.scalar(select(Survey))
            reminder = await session.scalar(select(Job).where(Job.kind == SURVEY_REMINDER))
        # Two reads: the commit may fall between them, so wait until both show it.
        if reminder is not None and survey is not None and survey.sent_at is not None:
            break
        await asyncio.sleep(0.05)
    assert survey is not None and survey.sent_at is not None and reminder is not None
    assert abs(reminder.due_at - (survey.sent_at + timedelta(hours=5))) < timedelta(seconds=1)

    invitation = gus.inbox(telegram_bot)[0]
    await gus.tap(telegram_bot, invitation, score_data(invitation, 1))
    await next_message(gus, telegram_bot, 2)
    for _ in range(100):
        async with app.session_factory() as session:
            case = await session.scalar(select(Case))
        if case is not None:
            break
        await asyncio.sleep(0.05)
    assert case is not None and case.first_response_due_at is not None
    assert case.first_response_due_at - case.created_at == timedelta(hours=2)


#: For each runtime setting: a value other than its default, and where the running bot reads it.
REACHES: dict[str, tuple[str, Callable[[Application], object], object]] = {
    "business_name": ("Noodle Bar", lambda app: app.words.business, "Noodle Bar"),
    "timezone": ("Asia/Shanghai", lambda app: str(app.visits.policy.time_zone), "Asia/Shanghai"),
    "default_language": ("zh_Hans", lambda app: app.locales.default, "zh_Hans"),
    "survey_scale": ("nps", lambda app: app.visits.scale, SurveyScale.NPS),
    "survey_delay": ("15m", lambda app: app.visits.policy.delay, timedelta(minutes=15)),
    "quiet_hours": ("22:00-07:00", lambda app: str(app.surveys.policy.quiet_hours), "22:00-07:00"),
    "survey_cooldown": ("7d", lambda app: app.visits.policy.cooldown, timedelta(days=7)),
    "survey_expiry": ("2d", lambda app: app.surveys.policy.expiry, timedelta(days=2)),
    "survey_reminder": ("0", lambda app: app.surveys.policy.reminder, timedelta(0)),
    "low_score": ("5", lambda app: app.conversation.policy.low_score, 5),
    "review_url": (REVIEW, lambda app: app.conversation.policy.review_url, REVIEW),
    "sla_first_response": (
        "8h",
        lambda app: app.conversation.policy.sla_first_response,
        timedelta(hours=8),
    ),
    "sla_contact_requested": (
        "30m",
        lambda app: app.conversation.policy.sla_contact_requested,
        timedelta(minutes=30),
    ),
    "sla_resolution": ("5d", lambda app: app.cases.policy.sla_resolution, timedelta(days=5)),
    "working_days": ("sun-thu", lambda app: sorted(app.cases.policy.working.days), [0, 1, 2, 3, 6]),
    "working_hours": (
        "08:00-17:00",
        lambda app: (str(app.cases.policy.working.start), str(app.cases.policy.working.end)),
        ("08:00:00", "17:00:00"),
    ),
    "followup_delay": ("2d", lambda app: app.cases.policy.followup_delay, timedelta(days=2)),
    "escalation_chat": (
        "-1009876543210",
        lambda app: app.cases.policy.escalation_chat,
        -1009876543210,
    ),
    # The digest job is (re)scheduled for the new slot (bot.digest.WeeklyDigest.apply).
    "weekly_digest": ("mon 09:00", lambda app: str(app.digest.slot), "mon 09:00"),
}


async def test_every_runtime_setting_reaches_the_part_of_the_bot_that_uses_it(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    assert set(REACHES) == set(admin.RUNTIME)  # a new runtime setting needs its line here
    # In this order: the NPS scale first, so that a low score of 5 is allowed.
    for name in sorted(REACHES, key=lambda name: name != "survey_scale"):
        value, where, expected = REACHES[name]
        assert where(app) != expected, name
        assert "is now" in await ask(boss, telegram_bot, f"/set {name} {value}"), name
        assert where(app) == expected, name


async def test_default_language_set_in_the_chat_is_what_a_customer_without_a_catalogue_reads(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    pierre = emulator.add_user(first_name="Pierre", language_code="fr")
    assert await ask(pierre, telegram_bot, "/help") == texts.render(texts.HELP, business=BUSINESS)
    await ask(boss, telegram_bot, "/set default_language zh_Hans")
    assert await ask(pierre, telegram_bot, "/help") == texts.render(
        texts.HELP, "zh_Hans", business=BUSINESS
    )
