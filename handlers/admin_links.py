"""The admin's links and test survey: /link (a counter's QR code) and /test_survey.

Only admins get here (handlers.admin gates the router), so nothing below checks roles.

/link <location> [staff] answers with the QR code as a photo, the link in its caption. A name
with spaces goes in double quotes (`/link "Old Town" Anna`); phones often turn " into “ ”, so
those count as quotes too.

/test_survey [location] sends the admin, at once, the survey a customer gets: the same message
and buttons, composed and sent by `SurveyService` itself, so every tap and word after it goes
through the customer's own conversation (and a low score opens a case, as for a customer). It
ignores quiet hours and the cooldown, but not /stop: an admin who turned questions off as a
customer is told how to turn them on. A test survey is an ordinary visit and survey whose visit
id starts with `TEST_VISIT_PREFIX`, so statistics can leave test answers out
(`is_test_visit`); it sends no reminder, and expires like any survey.

The service is `bot.test_surveys.TestSurveyService`.
"""

from __future__ import annotations

import shlex

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from bot.links import Actor, LabelError, Links, clean_label, location_link, qr_png
from bot.surveys import Outcome
from bot.test_surveys import TestSurveyService
from bot.values import format_duration
from bot.visits import VisitService
from storage.repositories import TelegramProfile

# -- wording (English: admins read it, customers never do) -------------------------------------

LINK_USAGE = (
    'Usage: /link <location> [staff], e.g. /link Downtown or /link "Old Town" Anna — put a '
    "name with spaces in double quotes."
)
LINK_CAPTION = (
    "{url}\n\n"
    "Print this at the counter{at}. A customer who scans it and presses Start has a visit to "
    "{location} recorded and gets a survey about it {delay} later (moved out of quiet hours; "
    "none if they were asked within {cooldown})."
)
LINK_CAPTION_STAFF = " for {staff}"
LABEL_TOO_LONG = (
    "The {field} can be at most {limit} characters; yours has {length}. Please shorten it and "
    "send the command again."
)

TEST_SURVEY_USAGE = (
    "Usage: /test_survey [location], e.g. /test_survey or /test_survey Downtown — the location "
    "is what the survey asks about."
)
TEST_SURVEY_NOTE = (
    "Here is the survey your customers get. Tap and write as a customer would: your answer is "
    "marked as a test, so that statistics can leave it out. A low score opens a case for your "
    "staff, as it would for a customer."
)
TEST_SURVEY_STOPPED = (
    "You turned questions off with /stop, so I may not send you a survey. Send /start to turn "
    "them back on, then /test_survey again."
)
TEST_SURVEY_NOT_SENT = "The test survey did not go out ({reason}). Please try again in a minute."


# Quotes as phones type them, read as the plain double quote.
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})


def router() -> Router:
    links_router = Router(name="admin-links")
    links_router.message.register(link, Command("link"))
    links_router.message.register(send_test_survey, Command("test_survey"))
    return links_router


# -- /link ---------------------------------------------------------------------------------------


async def link(
    message: Message, command: CommandObject, bot: Bot, links: Links, visits: VisitService
) -> None:
    words = split_words(command.args)
    if words is None or not 1 <= len(words) <= 2:
        await message.answer(LINK_USAGE)
        return
    location, staff = words[0], words[1] if len(words) == 2 else None
    person = message.from_user
    by = Actor(person.id, person.full_name) if person is not None else None
    me = await bot.me()
    try:
        made = await location_link(links, me.username or "", location, staff=staff, by=by)
    except LabelError as error:
        await message.answer(_label_refusal(error, LINK_USAGE))
        return
    place = clean_label(location, "location") or location
    who = clean_label(staff, "staff")
    caption = LINK_CAPTION.format(
        url=made.url,
        at=LINK_CAPTION_STAFF.format(staff=who) if who else "",
        location=place,
        delay=format_duration(visits.policy.delay),
        cooldown=format_duration(visits.policy.cooldown),
    )
    photo = BufferedInputFile(qr_png(made.url), filename=f"hearback-link-{made.payload}.png")
    await message.answer_photo(photo, caption=caption)


def split_words(args: str | None) -> list[str] | None:
    """The command's arguments as words, double quotes keeping spaces together; None when a
    quote is not closed. Apostrophes are letters here (O'Brien), not quotes."""
    lexer = shlex.shlex((args or "").translate(_QUOTES), posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""
    try:
        return list(lexer)
    except ValueError:
        return None


def _label_refusal(error: LabelError, usage: str) -> str:
    if not error.length:
        return usage
    return LABEL_TOO_LONG.format(field=error.field, limit=error.limit, length=error.length)


# -- /test_survey --------------------------------------------------------------------------------


async def send_test_survey(
    message: Message, command: CommandObject, test_surveys: TestSurveyService
) -> None:
    person = message.from_user
    if person is None:
        return
    words = split_words(command.args)
    if words is None:
        await message.answer(TEST_SURVEY_USAGE)
        return
    try:
        location = clean_label(" ".join(words), "location")
    except LabelError as error:
        await message.answer(_label_refusal(error, TEST_SURVEY_USAGE))
        return
    prepared = await test_surveys.prepare(
        TelegramProfile(
            user_id=person.id,
            first_name=person.first_name,
            username=person.username,
            language_code=person.language_code,
        ),
        location=location,
        message_id=message.message_id,
        sent_at=message.date,
    )
    if prepared.stopped:
        await message.answer(TEST_SURVEY_STOPPED)
        return
    if not prepared.created or prepared.survey_id is None:
        return  # Telegram delivered this command again: the survey went out the first time
    await message.answer(TEST_SURVEY_NOTE)
    outcome = await test_surveys.send(prepared.survey_id)
    if outcome is not Outcome.SENT:
        await message.answer(TEST_SURVEY_NOT_SENT.format(reason=outcome.value))
