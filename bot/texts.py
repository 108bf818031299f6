"""Everything a customer reads, by name, in English; the translations live in gettext catalogues.

Each text is declared once with `text(name, english)`. The English is the gettext message id
(so `pybabel extract -k text:2` finds every one, see `make locales`), the name is how admins
refer to it (issue 6 lets them replace a text per language). `Texts.render` picks the customer's
language and fills the placeholders; no handler writes customer-facing words itself.

The wording follows DESIGN.md: address the customer by name, speak in positive words, apologise
as a courtesy, and say what happens next and by when. Placeholders: {name} the customer's first
name, {business} BUSINESS_NAME, {location} and {service} from the visit, {when}/{time}/{deadline}
times as the customer's clock says them; a few texts have their own, listed beside them.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from babel.dates import format_date, format_skeleton
from babel.lists import format_list

from bot.i18n import DEFAULT_LOCALE, Catalogues, catalogues, negotiate

__all__ = ["TEXTS", "Text", "Texts", "placeholders", "render", "text"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Text:
    name: str
    english: str

    @property
    def placeholders(self) -> frozenset[str]:
        return placeholders(self.english)


def placeholders(template: str) -> frozenset[str]:
    """The ``{field}`` names a template uses."""
    return frozenset(
        field for _, field, _, _ in string.Formatter().parse(template) if field is not None
    )


#: Every text by name.
TEXTS: dict[str, Text] = {}


def text(name: str, english: str) -> Text:
    if name in TEXTS:
        raise ValueError(f"text {name!r} declared twice")
    TEXTS[name] = declared = Text(name, english)
    return declared


# --------------------------------------------------------------------------- start and help

GREETING = text(
    "greeting",
    "Hello, {name}! Thank you for starting me. I am the feedback assistant of {business}: "
    "soon after a visit I will ask you how it went, and one tap is enough to answer.",
)
GREETING_AGAIN = text(
    "greeting_again", "Welcome back, {name}! I am here whenever {business} asks about a visit."
)
RESUMED = text(
    "resumed",
    "Welcome back, {name}! Questions are on again: after your next visit to {business} I will "
    "ask you how it went.",
)
HELP = text(
    "help",
    "I ask how your visit to {business} went, so that the team hears what worked and can put "
    "right what did not. When a question arrives, just tap an answer — and you can write to me "
    "here at any time.\n\n"
    "/language — choose your language\n"
    "/stop — no more questions\n"
    "/forget — erase your personal data\n"
    "/help — this message",
)
UNKNOWN_COMMAND = text(
    "unknown_command", "I do not know that command, {name}, but here is what I can do."
)
# How to address someone whose first name we do not know (Telegram nearly always tells it).
NAME_UNKNOWN = text("name_unknown", "dear customer")

# ------------------------------------------------------------- deep links and QR codes (arrivals)

VISIT_NOTED_ASK_AT = text(
    "visit_noted_ask_at", "Thank you, {name}! I will ask you about your visit to {location} {when}."
)
# {time} is a clock time; {day} a weekday and date.
WHEN_TODAY = text("when_today", "at about {time}")
WHEN_TOMORROW = text("when_tomorrow", "tomorrow at about {time}")
WHEN_LATER = text("when_later", "on {day} at about {time}")
VISIT_NOTED_ASKED_RECENTLY = text(
    "visit_noted_asked_recently",
    "Thank you, {name}! Your visit to {location} is noted. We asked for your view only recently, "
    "so this time I will give you a rest from questions. Thank you for coming back!",
)
VISIT_NOTED = text("visit_noted", "Thank you, {name}! Your visit to {location} is noted.")
PERSONAL_LINKED = text(
    "personal_linked",
    "Hello, {name}! Thank you for starting me. You are all set: {business} can now ask you right "
    "here how a visit went, and one tap is enough to answer.",
)
PERSONAL_LINKED_AGAIN = text(
    "personal_linked_again",
    "Welcome back, {name}! You are all set: {business} can ask you right here how a visit went.",
)
# Added below a greeting when a start link is unknown, tampered with, or someone else's personal
# link: the same words in every case, so they reveal nothing about any customer.
LINK_NOT_USABLE = text(
    "link_not_usable",
    "The link you came with is not one I can use, so we have simply started as usual. "
    "If {business} gave it to you, they will gladly send you a fresh one.",
)

# ----------------------------------------------------------------------------- the survey

SURVEY_AT_LOCATION = text("survey_at_location", "How was your visit to {location} {when}, {name}?")
SURVEY_SERVICE_AT_LOCATION = text(
    "survey_service_at_location", "How was your {service} at {location} {when}, {name}?"
)
SURVEY_SERVICE = text("survey_service", "How was your {service} with {business} {when}, {name}?")
SURVEY_AT_BUSINESS = text("survey_at_business", "How was your visit to {business} {when}, {name}?")
SURVEY_TODAY = text("survey_today", "today")
SURVEY_YESTERDAY = text("survey_yesterday", "yesterday")
# {weekday}: e.g. Monday; {date}: e.g. 3 January.
SURVEY_ON_WEEKDAY = text("survey_on_weekday", "on {weekday}")
SURVEY_ON_DATE = text("survey_on_date", "on {date}")
SURVEY_HINT_CSAT = text(
    "survey_hint_csat", "Tap a score from 1 to 5, where 5 is excellent. One tap is all it takes!"
)
SURVEY_HINT_NPS = text(
    "survey_hint_nps",
    "How likely are you to recommend {business} to a friend? Tap a score from 0 to 10, where 10 "
    "is very likely. One tap is all it takes!",
)
# The one reminder, sent as a reply to the survey message.
SURVEY_REMINDER = text(
    "survey_reminder",
    "A gentle reminder, {name}: one tap on a score above tells {business} how your visit went. "
    "Thank you!",
)
# Replaces the hint under the question once a score is tapped; {score} of {top}.
SCORE_CHOSEN = text("score_chosen", "Your score: {score} out of {top}. Thank you!")

# Short answers to a tap that changes nothing (shown as a small notice over the chat).
TAP_ALREADY_ANSWERED = text(
    "tap_already_answered", "You have answered this one already. Thank you!"
)
TAP_SURVEY_CLOSED = text(
    "tap_survey_closed", "This question has closed, but you can always write to me here."
)
TAP_NOT_USABLE = text("tap_not_usable", "This button is not one I can use. Nothing was changed.")
TAP_STEP_DONE = text("tap_step_done", "That step is done already. Thank you!")
TAP_SLOW_DOWN = text("tap_slow_down", "One moment, please: I am still on your last tap.")

# ------------------------------------------------------------------------ a high score

THANKS_HIGH = text(
    "thanks_high",
    "Thank you, {name}! We are delighted you enjoyed it. Is there anything we could do even "
    "better? Just write it here, or tap Skip.",
)
# Between the low and the high scores (e.g. 7–8 on the 0–10 scale).
THANKS_MIDDLE = text(
    "thanks_middle",
    "Thank you, {name}! What would have made it a perfect visit? Just write it here, or tap Skip.",
)
THANKS_FINAL = text("thanks_final", "Thank you, {name}! We look forward to seeing you again.")
THANKS_FOR_COMMENT = text(
    "thanks_for_comment",
    "Thank you for taking the time, {name}! Your words go straight to the team.",
)
REVIEW_INVITATION = text(
    "review_invitation",
    "If you have a minute, would you share your experience in a public review? It helps others "
    "find {business}.",
)
BUTTON_REVIEW = text("button_review", "Write a review")

# ----------------------------------------------------------- a low score: service recovery

APOLOGY = text(
    "apology",
    "{name}, we are truly sorry your visit was not what it should have been, and thank you for "
    "telling us: it is how we put things right. What went wrong? Tap all that apply, then Done.",
)
APOLOGY_AT_LOCATION = text(
    "apology_at_location",
    "{name}, we are truly sorry your visit to {location} was not what it should have been, and "
    "thank you for telling us: it is how we put things right. What went wrong? Tap all that "
    "apply, then Done.",
)
# {reasons}: the chips the customer tapped, listed as the language lists things ("A, B and C").
REASONS_CHOSEN = text("reasons_chosen", "What went wrong: {reasons}.")
REASONS_NONE = text("reasons_none", "No reason chosen.")
ASK_COMMENT_LOW = text(
    "ask_comment_low",
    "Thank you. Would you like to tell us more in your own words? Write it here (a voice note or "
    "a photo is welcome too), or tap Skip.",
)
ASK_CONTACT = text(
    "ask_contact", "Thank you, {name}. Would you like a manager to contact you about it?"
)
# {deadline}: e.g. "today by 15:00", "tomorrow by 09:00" (see DEADLINE_*).
CLOSING_CONTACT = text(
    "closing_contact",
    "Thank you, {name}. A manager will contact you right here {deadline}, and we will do our "
    "best to make it right.",
)
CLOSING_NO_CONTACT = text(
    "closing_no_contact",
    "Thank you, {name}. Your feedback is with the team now, and a manager will look into it "
    "{deadline}. If anything else comes to mind, just write to me here.",
)
DEADLINE_TODAY = text("deadline_today", "today by {time}")
DEADLINE_TOMORROW = text("deadline_tomorrow", "tomorrow by {time}")
DEADLINE_LATER = text("deadline_later", "by {time} on {day}")

BUTTON_DONE = text("button_done", "Done")
BUTTON_SKIP = text("button_skip", "Skip")
BUTTON_CONTACT_YES = text("button_contact_yes", "Yes, please")
BUTTON_CONTACT_NO = text("button_contact_no", "No, thank you")
ANSWER_CONTACT_YES = text("answer_contact_yes", "You chose: yes, please contact me.")
ANSWER_CONTACT_NO = text("answer_contact_no", "You chose: no contact needed.")
ANSWER_SKIPPED = text("answer_skipped", "Skipped.")

# The default reason chips (DESIGN.md); admins can rename them, and a renamed chip shows as named.
REASON_RUDE_STAFF = text("reason_rude_staff", "Rude or indifferent staff")
REASON_LONG_WAIT = text("reason_long_wait", "Waited too long")
REASON_POOR_QUALITY = text("reason_poor_quality", "Poor quality of work")
REASON_OUT_OF_STOCK = text("reason_out_of_stock", "Item out of stock")
REASON_UNCLEAN = text("reason_unclean", "Unclean premises")
REASON_ON_HOLD = text("reason_on_hold", "Kept on hold")
REASON_LACKED_KNOWLEDGE = text("reason_lacked_knowledge", "Staff lacked knowledge")
REASON_PUSHY_SELLING = text("reason_pushy_selling", "Pushy selling")
REASON_DISRESPECT = text("reason_disrespect", "Treated with disrespect")
REASON_OTHER = text("reason_other", "Other")

# ---------------------------------------------------------- comments and other messages

# {kind}: what was kept (see MEDIA_*).
COMMENT_MEDIA_KEPT = text(
    "comment_media_kept", "Thank you, {name}! I have kept your {kind} for the team."
)
MEDIA_VOICE = text("media_voice", "voice note")
MEDIA_PHOTO = text("media_photo", "photo")
MEDIA_VIDEO = text("media_video", "video")
MEDIA_VIDEO_NOTE = text("media_video_note", "video message")
MEDIA_AUDIO = text("media_audio", "audio")
MEDIA_DOCUMENT = text("media_document", "file")
# A sticker, a location or the like where words were expected.
HINT_TEXT_PLEASE = text(
    "hint_text_please",
    "Thank you, {name}! That is not something I can pass on to the team. Would you write it in "
    "a few words? A voice note, photo or video is welcome too.",
)
HINT_TAP_PLEASE = text(
    "hint_tap_please", "Thank you, {name}! Please tap one of the buttons above to answer."
)
HINT_EMPTY = text(
    "hint_empty", "That message looks empty, {name}. Would you write it in a few words?"
)
UNSOLICITED_THANKS = text(
    "unsolicited_thanks", "Thank you for your message, {name}! I have passed it on to the team."
)
UNSOLICITED_SORRY = text(
    "unsolicited_sorry",
    "Thank you for telling us, {name}, and we are sorry to hear it. I have passed it on to the "
    "team, and a manager will look into it {deadline}.",
)
SLOW_DOWN = text(
    "slow_down",
    "I have every one of your messages, {name}: nothing is lost. Give me a moment to catch up.",
)

# --------------------------------------------------------------------- a case with the team

# A message from the team, relayed by the bot: the customer reads it under the business's name.
MESSAGE_FROM_BUSINESS = text("message_from_business", "{business}:\n\n{message}")
# After the case is resolved (FOLLOWUP_DELAY later, inside allowed hours).
FOLLOWUP_ASK = text(
    "followup_ask",
    "Hello, {name}. You told us your visit was not what it should have been, and the team has "
    "worked on it since. Was it put right?",
)
BUTTON_FOLLOWUP_YES = text("button_followup_yes", "Yes, thank you")
BUTTON_FOLLOWUP_NO = text("button_followup_no", "No, not yet")
FOLLOWUP_YES = text(
    "followup_yes",
    "Thank you, {name}! We are glad it is put right, and we look forward to seeing you again.",
)
FOLLOWUP_NO = text(
    "followup_no",
    "Thank you for telling us, {name}, and we are sorry it is not put right yet. The team takes "
    "it up again straight away, and a manager will be in touch.",
)

# ------------------------------------------------------------------- /stop, /forget, /language

STOP_CONFIRM = text(
    "stop_confirm",
    "Would you like me to stop asking about your visits? You can turn questions back on at any "
    "time with /start.",
)
BUTTON_STOP_YES = text("button_stop_yes", "Yes, stop")
BUTTON_STOP_NO = text("button_stop_no", "No, keep asking")
STOPPED = text(
    "stopped",
    "Done, {name}: no more questions from me. Should you change your mind, just send /start.",
)
STOP_KEPT = text("stop_kept", "Lovely, {name}: I will keep asking. Thank you!")
ALREADY_STOPPED = text(
    "already_stopped",
    "Questions are already off, {name}. Should you change your mind, just send /start.",
)
FORGET_CONFIRM = text(
    "forget_confirm",
    "This erases your name, your messages and your comments from the feedback records of "
    "{business}. Your scores stay, with nothing linking them to you, so they still count in the "
    "totals. Erasing cannot be undone. Shall I erase your data?",
)
BUTTON_FORGET_YES = text("button_forget_yes", "Yes, erase my data")
BUTTON_FORGET_NO = text("button_forget_no", "No, keep it")
FORGOTTEN = text(
    "forgotten",
    "Done: your personal data is erased. Should you write to me again, we start afresh.",
)
FORGET_KEPT = text("forget_kept", "Nothing was erased. Thank you, {name}!")
NOTHING_TO_FORGET = text("nothing_to_forget", "I keep no personal data about you. All is well!")
LANGUAGE_CHOOSE = text("language_choose", "Which language would you like me to write in?")
# Written in the chosen language; {language} is its name in itself.
LANGUAGE_SET = text("language_set", "Done: from now on I will write to you in {language}.")


# --------------------------------------------------------------------------------- rendering


class Texts:
    """Renders texts in a customer's language, with the business's name filled in.

    ``default_locale`` is for customers whose language has no catalogue (DEFAULT_LANGUAGE);
    ``overrides`` maps (text name, locale) to an admin's own wording (issue 6), which wins over
    the catalogue. `override` and `restore` change them while the bot runs (`bot.text_editor`
    stores them and loads them at start); every service shares this one object, so a change
    applies to the very next message.
    """

    def __init__(
        self,
        business: str,
        *,
        default_locale: str = DEFAULT_LOCALE,
        i18n: Catalogues | None = None,
        overrides: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.business = business
        self.default_locale = default_locale
        self._i18n = i18n or catalogues()
        self._overrides = dict(overrides or {})

    def locale_for(self, language: str | None) -> str:
        """The catalogue for a customer's language tag (see `bot.i18n.negotiate`)."""
        return negotiate(language, self.default_locale)

    def template(self, item: Text, locale: str) -> str:
        own = self._overrides.get((item.name, locale))
        if own is not None:
            return own
        return self.default(item, locale)

    def default(self, item: Text, locale: str) -> str:
        """The wording from the catalogue (English in the code), whatever an admin set."""
        return self._i18n.gettext(item.english, locale=locale)

    def render(self, item: Text, locale: str = DEFAULT_LOCALE, **values: object) -> str:
        values.setdefault("business", self.business)
        own = self._overrides.get((item.name, locale))
        if own is not None:
            try:
                return own.format_map(values)
            except (KeyError, IndexError, ValueError, AttributeError):
                # Checked when set and when loaded, so only a text whose placeholders changed in
                # the code since could get here: the customer still gets a message.
                log.exception("%s/%s: the admin's wording does not render", item.name, locale)
        return self.default(item, locale).format_map(values)

    # -- admins' own wording (issue 6) --------------------------------------------------------

    def override(self, name: str, locale: str, wording: str) -> None:
        """From now on customers reading ``locale`` get ``wording`` for the text ``name``."""
        self._overrides[(name, locale)] = wording

    def restore(self, name: str, locale: str) -> None:
        """Back to the catalogue's wording (nothing happens if there was no override)."""
        self._overrides.pop((name, locale), None)

    def overridden(self, name: str, locale: str) -> str | None:
        """An admin's wording in force for this text and language, if any."""
        return self._overrides.get((name, locale))

    def overrides(self) -> dict[tuple[str, str], str]:
        """Every admin wording in force, by (name, locale): a copy."""
        return dict(self._overrides)

    def name(self, first_name: str | None, locale: str) -> str:
        """How to address the customer: their first name, or a polite stand-in."""
        return (first_name or "").strip() or self.render(NAME_UNKNOWN, locale)

    def date(self, day: date | datetime, locale: str) -> str:
        """A day and month as the language writes it: "3 January", "1月3日"."""
        return format_skeleton("MMMMd", day, locale=_calendar_locale(locale))

    def listing(self, items: list[str], locale: str) -> str:
        """ "A, B and C", "A、B和C"."""
        return format_list(items, locale=_calendar_locale(locale)) if items else ""

    def weekday(self, day: date | datetime, locale: str) -> str:
        """ "Monday", "星期一"."""
        return format_date(day, "EEEE", locale=_calendar_locale(locale))

    def weekday_and_date(self, day: date | datetime, locale: str) -> str:
        """ "Monday 12 January", "1月12日周一"."""
        return format_skeleton("MMMMEEEEd", day, locale=_calendar_locale(locale))


def _calendar_locale(locale: str) -> str:
    # The texts are British English, so dates are too ("12 January", not "January 12").
    return "en_GB" if locale == "en" else locale


def render(
    item: Text, locale: str = DEFAULT_LOCALE, *, business: str = "", **values: object
) -> str:
    """Render without admin overrides (tests, and places with no `Texts` at hand)."""
    return Texts(business).render(item, locale, **values)
