"""The words staff and admins read about staff chats: registering, listing, removing them.

Staff chats are the back room, and admins configure the bot in their private chat; neither is
localised yet, so these are plain English constants (`str.format` placeholders), not gettext
ids like the customer's texts in `bot.texts`. Nothing here is ever shown to a customer.
"""

from __future__ import annotations

# -- /staff_here in a group, and /staffchat add <chat id> in private ---------------------------

REGISTERED_FORUM = (
    "This chat now receives cases. Each case gets its own topic here; write in the topic to "
    "answer the customer."
)
REGISTERED_GROUP = (
    "This chat now receives cases. Each case arrives here as a card; reply to the card to "
    "answer the customer."
)
ALREADY_REGISTERED = "This chat already receives cases."

#: The refusals: what is missing, and what to do about it. ``{chat}`` is "This chat" in the chat
#: itself, else its title; refusals change nothing (a chat that received cases still does).
REFUSED_NOT_A_MEMBER = (
    "I am not a member of chat {chat_id} (Telegram says: {detail}). Add me to the group, then "
    "send /staff_here there."
)
REFUSED_NOT_A_GROUP = "{chat} is not a group: cases go to groups and forum supergroups only."
REFUSED_CANNOT_POST = (
    "{chat} does not let me send messages, so cases could not reach it: let me send messages "
    "there, then send /staff_here again."
)
REFUSED_NEEDS_TOPIC_RIGHTS = (
    "{chat} is a forum, where each case gets its own topic: make me an administrator with the "
    "right to manage topics, then send /staff_here again."
)
THIS_CHAT = "This chat"

# -- the admin's private chat: /staffchat -------------------------------------------------------

#: The same outcomes, told about another chat (the admin is in private, not in that chat).
ADDED = "{chat} now receives cases."
ALREADY_ADDED = "{chat} already receives cases."

USAGE = (
    "Usage:\n"
    "/staffchat add <chat id> — cases may go to that group (I must be in it)\n"
    "/staffchat list — the staff chats\n"
    "/staffchat remove <chat id> — no new cases go there\n"
    "Easiest: add me to the staff group and send /staff_here there."
)
STAFF_HERE_IN_PRIVATE = (
    "Send /staff_here in the staff group itself, or /staffchat add <chat id> here."
)

LIST_HEADING = "Staff chats (cases go to the first unless a routing rule says otherwise):"
LIST_LINE = "{n}. {chat} — {kind}, id {chat_id}"
LIST_NONE = (
    "No staff chat yet, so cases reach nobody. Add me to your staff group and send "
    "/staff_here there."
)
LIST_REMOVED_HEADING = "Removed (send /staff_here there to bring one back):"
KIND_FORUM = "forum, a topic per case"
KIND_GROUP = "group"

REMOVED = "{chat} no longer receives new cases; its open cases stay there."
NOT_REMOVED = "{chat_id} is not an active staff chat. /staffchat list shows them."

#: How a chat is named when Telegram gave it no title.
UNTITLED = "chat {chat_id}"
