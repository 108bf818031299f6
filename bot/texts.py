"""What the customer reads. Kept apart from the code so wording can change without logic changing.

Texts speak in positive words and address the customer by name (see DESIGN.md). The conversation
issue moves them into gettext catalogues; the names stay.
"""

from __future__ import annotations

GREETING = (
    "Hello, {name}! Thank you for starting me. I am the feedback assistant of {business}: "
    "soon after a visit I will ask you how it went, and one tap is enough to answer."
)
GREETING_AGAIN = "Welcome back, {name}! I am here whenever {business} asks about a visit."
HELP = (
    "I ask how your visit to {business} went, so that the team hears what worked and can put "
    "right what did not. When a question arrives, just tap an answer."
)
NOT_UNDERSTOOD = (
    "Thank you, {name}! I can only take answers to the questions I send. When {business} asks "
    "about a visit, you can answer right here."
)

# Deep links and QR codes (bot.arrivals). {when} is one of the WHEN_* phrases.
VISIT_NOTED_ASK_AT = "Thank you, {name}! I will ask you about your visit to {location} {when}."
WHEN_TODAY = "at about {time}"
WHEN_TOMORROW = "tomorrow at about {time}"
WHEN_LATER = "on {day} at about {time}"
VISIT_NOTED_ASKED_RECENTLY = (
    "Thank you, {name}! Your visit to {location} is noted. We asked for your view only recently, "
    "so this time I will give you a rest from questions. Thank you for coming back!"
)
VISIT_NOTED = "Thank you, {name}! Your visit to {location} is noted."
PERSONAL_LINKED = (
    "Hello, {name}! Thank you for starting me. You are all set: {business} can now ask you right "
    "here how a visit went, and one tap is enough to answer."
)
PERSONAL_LINKED_AGAIN = (
    "Welcome back, {name}! You are all set: {business} can ask you right here how a visit went."
)
# Added below a greeting when a start link is unknown, tampered with, or someone else's personal
# link: the same words in every case, so they reveal nothing about any customer.
LINK_NOT_USABLE = (
    "The link you came with is not one I can use, so we have simply started as usual. "
    "If {business} gave it to you, they will gladly send you a fresh one."
)

# The survey message (bot.surveys): the question names the place, or the service, and the day of
# the visit in the customer's time zone ({when}: one of the SURVEY_* day phrases below).
SURVEY_AT_LOCATION = "How was your visit to {location} {when}, {name}?"
SURVEY_SERVICE_AT_LOCATION = "How was your {service} at {location} {when}, {name}?"
SURVEY_SERVICE = "How was your {service} with {business} {when}, {name}?"
SURVEY_AT_BUSINESS = "How was your visit to {business} {when}, {name}?"
# How to address someone whose first name we do not know (Telegram nearly always tells it).
SURVEY_NAME_UNKNOWN = "dear customer"
SURVEY_TODAY = "today"
SURVEY_YESTERDAY = "yesterday"
SURVEY_ON_WEEKDAY = "on {weekday}"
SURVEY_ON_DATE = "on {day} {month}"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Under the question, above the score buttons.
SURVEY_HINT_CSAT = "Tap a score from 1 to 5, where 5 is excellent. One tap is all it takes!"
SURVEY_HINT_NPS = (
    "How likely are you to recommend {business} to a friend? Tap a score from 0 to 10, where 10 "
    "is very likely. One tap is all it takes!"
)
# The one reminder, sent as a reply to the survey message.
SURVEY_REMINDER = (
    "A gentle reminder, {name}: one tap on a score above tells {business} how your visit went. "
    "Thank you!"
)


def render(template: str, **values: str) -> str:
    return template.format(**values)
