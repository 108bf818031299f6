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


def render(template: str, **values: str) -> str:
    return template.format(**values)
