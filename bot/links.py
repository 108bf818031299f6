"""Signed deep links and QR codes: `https://t.me/<bot>?start=<payload>`.

Two kinds of link (`LinkKind`):

- a *location link*, printed as a QR code at a counter: anyone may scan it, as often as they
  like, and each scan records a new visit at that location (optionally with staff and service);
- a *personal link* for a customer the business knows only by its own reference (`ref`): the
  person who presses Start becomes that customer, and nobody else can afterwards.

Links are made by `hearback link` (a PNG file) and by an admin's /link in the chat (the same
PNG as a photo, `qr_png`; recorded in the audit log with the link row, in one transaction).

Payload format
--------------
Telegram passes at most 64 characters of `[A-Za-z0-9_-]` from a link to /start, too few for a
long location name (let alone one in Cyrillic, at two bytes a letter). So the target lives in
the database (`storage.models.LinkTarget`) and the payload names its row:

    15 bytes = kind (1) | target id (4, big-endian) | tag (10)
    payload  = base64url(those 15 bytes), no padding: always exactly 20 characters
    tag      = HMAC-SHA256(secret, b"hearback/link/v1" | kind | target id), first 10 bytes

Kind bytes: 0x01 location, 0x02 personal; a future format takes a new kind byte.

Why this is safe:

- Forging: the tag covers the kind and the id, so making a payload for another target (another
  location, someone else's ref, or a personal link out of a location link) needs the secret;
  guessing an 80-bit tag is hopeless, and each guess costs a Telegram message.
- Tampering: 15 bytes are exactly 20 base64 characters with no spare bits, and the decoder
  also insists on the canonical encoding, so changing any character changes the signed bytes.
- A valid signature is not enough: the row must exist and be of the signed kind.
- Replaying someone else's personal link is stopped by the binding, not by the signature:
  a ref already bound to another Telegram user is refused (bot.arrivals).
- The secret is LINK_SECRET, or when that is empty a random one generated once and kept in the
  database (`settings` table): QR codes stay valid across restarts and bot-token changes with
  no configuration, and changing LINK_SECRET invalidates every link made before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import segno
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, SystemClock
from storage.db import create_engine, create_session_factory, insert_for
from storage.models import LinkKind, LinkTarget, Setting
from storage.repositories import AuditRepository

if TYPE_CHECKING:
    from bot.settings import Settings

#: Characters in every payload this module makes (Telegram allows up to 64).
PAYLOAD_LENGTH = 20
#: Bytes of the HMAC kept in a payload: 80 bits.
TAG_BYTES = 10
#: Longest location, staff, service or customer ref, as stored on visits and customers.
MAX_FIELD_LENGTH = 128
#: Where the generated secret is kept (a key no setting is named, so nobody mistakes it for one).
SECRET_SETTING_KEY = "internal.link_secret"
#: Audit action of a location link made by an admin in the chat (/link).
LINK_CREATED_ACTION = "link.create"
#: The audit log's target column holds this many characters.
_AUDIT_TARGET_LENGTH = 256

_DOMAIN = b"hearback/link/v1"
_KIND_BYTES = {LinkKind.LOCATION: 1, LinkKind.CUSTOMER: 2}
_KINDS_BY_BYTE = {byte: kind for kind, byte in _KIND_BYTES.items()}
_MAX_TARGET_ID = 2**32 - 1
_PAYLOAD_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{PAYLOAD_LENGTH}}}")
_BOT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,31}")


@dataclass(frozen=True, slots=True)
class SignedTarget:
    """What a payload with a valid tag names: a kind and a row of `link_targets`."""

    kind: LinkKind
    target_id: int


class LinkSigner:
    """Makes and checks payloads with one secret. Pure: no database, no clock."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a link secret cannot be empty")
        self._key = secret.encode()

    def sign(self, kind: LinkKind, target_id: int) -> str:
        if not 0 < target_id <= _MAX_TARGET_ID:
            raise ValueError(f"target id {target_id} does not fit a link")
        body = bytes([_KIND_BYTES[kind]]) + target_id.to_bytes(4, "big")
        return base64.urlsafe_b64encode(body + self._tag(body)).decode().rstrip("=")

    def verify(self, payload: str) -> SignedTarget | None:
        """The target of a genuine payload; None for anything else (never raises)."""
        if not isinstance(payload, str) or not _PAYLOAD_SHAPE.fullmatch(payload):
            return None
        try:
            raw = base64.urlsafe_b64decode(payload)
        except (binascii.Error, ValueError):
            return None
        body, tag = raw[:5], raw[5:]
        if len(tag) != TAG_BYTES or not hmac.compare_digest(tag, self._tag(body)):
            return None
        if base64.urlsafe_b64encode(raw).decode().rstrip("=") != payload:
            return None  # not the canonical spelling of these bytes
        kind = _KINDS_BY_BYTE.get(body[0])
        target_id = int.from_bytes(body[1:], "big")
        if kind is None or target_id == 0:
            return None
        return SignedTarget(kind, target_id)

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, _DOMAIN + body, hashlib.sha256).digest()[:TAG_BYTES]


# -------------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class LocationLink:
    """A QR code at a counter: where (and optionally by whom, and what) the customer was served."""

    location: str
    staff: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class PersonalLink:
    """A link for one customer the business knows by its own reference."""

    ref: str


@dataclass(frozen=True, slots=True)
class DeepLink:
    """A link ready to hand out: the t.me URL and the payload inside it."""

    url: str
    payload: str


class LabelError(ValueError):
    """A location, staff or service name that cannot be stored: empty where one is needed, or
    longer than `MAX_FIELD_LENGTH`. ``length`` is the length given (0 when empty)."""

    def __init__(self, field: str, length: int) -> None:
        self.field = field
        self.length = length
        self.limit = MAX_FIELD_LENGTH
        if length:
            super().__init__(f"{field} must be at most {MAX_FIELD_LENGTH} characters")
        else:
            super().__init__(f"{field} must not be empty")


def clean_label(value: str | None, name: str, *, required: bool = False) -> str | None:
    """A location, staff or service name as stored: trimmed, in one Unicode spelling (NFC), so
    "Café" typed two ways is one location; empty means none. LabelError when it cannot be."""
    text = unicodedata.normalize("NFC", value.strip()) if value else ""
    if not text:
        if required:
            raise LabelError(name, 0)
        return None
    if len(text) > MAX_FIELD_LENGTH:
        raise LabelError(name, len(text))
    return text


@dataclass(frozen=True, slots=True)
class Actor:
    """An admin making a link in the chat, for the audit log."""

    user_id: int
    name: str | None = None


def _ref(value: str) -> str:
    """A customer ref is the business's identifier: kept exactly as given, never normalised,
    because it must match the ref the API or the CSV import stored."""
    if not value or not value.strip():
        raise ValueError("customer ref must not be empty")
    if len(value) > MAX_FIELD_LENGTH:
        raise ValueError(f"customer ref must be at most {MAX_FIELD_LENGTH} characters")
    return value


def _fingerprint(kind: LinkKind, *fields: str | None) -> str:
    canonical = json.dumps([kind.value, *fields], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Links:
    """Link targets in the database and the secret that signs them.

    The secret is read (or generated) on first use and then kept for the life of the object;
    a changed LINK_SECRET takes effect on restart.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
        secret: str = "",
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        self._configured = secret
        self._signer: LinkSigner | None = None

    @classmethod
    def from_settings(
        cls,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock | None = None,
    ) -> Links:
        return cls(sessions, clock, settings.link_secret.get_secret_value())

    async def signer(self) -> LinkSigner:
        if self._signer is None:
            self._signer = LinkSigner(self._configured or await self._stored_secret())
        return self._signer

    async def location_payload(
        self,
        location: str,
        staff: str | None = None,
        service: str | None = None,
        *,
        by: Actor | None = None,
    ) -> str:
        """The payload for a location link (the same one every time for the same target).
        Raises LabelError (a ValueError) for an empty location or a field over 128 characters.
        ``by``: the admin who asked in the chat, recorded in the audit log with the link."""
        place = clean_label(location, "location", required=True)
        who, what = clean_label(staff, "staff"), clean_label(service, "service")
        target = LinkTarget(
            kind=LinkKind.LOCATION,
            fingerprint=_fingerprint(LinkKind.LOCATION, place, who, what),
            location=place,
            staff=who,
            service=what,
        )
        return await self._payload_for(target, by=by)

    async def personal_payload(self, ref: str) -> str:
        """The payload for a customer's personal link (the same one every time for a ref).
        The customer need not exist yet: the first visit may come after the link."""
        ref = _ref(ref)
        target = LinkTarget(
            kind=LinkKind.CUSTOMER,
            fingerprint=_fingerprint(LinkKind.CUSTOMER, ref),
            customer_ref=ref,
        )
        return await self._payload_for(target)

    async def resolve(self, payload: str) -> LocationLink | PersonalLink | None:
        """What a start payload leads to; None when it is malformed, tampered with, signed with
        another secret, or names no target of its kind. Never raises for bad input."""
        signed = (await self.signer()).verify(payload)
        if signed is None:
            return None
        async with self._sessions() as session:
            row = await session.get(LinkTarget, signed.target_id)
        if row is None or row.kind != signed.kind:
            return None
        if row.kind is LinkKind.LOCATION and row.location:
            return LocationLink(row.location, row.staff, row.service)
        if row.kind is LinkKind.CUSTOMER and row.customer_ref:
            return PersonalLink(row.customer_ref)
        return None

    async def _payload_for(self, target: LinkTarget, *, by: Actor | None = None) -> str:
        signer = await self.signer()
        async with self._sessions.begin() as session:
            insert = insert_for(session)
            target_id = await session.scalar(
                insert(LinkTarget)
                .values(
                    kind=target.kind,
                    fingerprint=target.fingerprint,
                    location=target.location,
                    staff=target.staff,
                    service=target.service,
                    customer_ref=target.customer_ref,
                    created_at=self._clock.now(),
                )
                .on_conflict_do_nothing(index_elements=[LinkTarget.fingerprint])
                .returning(LinkTarget.id)
            )
            created = target_id is not None
            if target_id is None:  # made before (perhaps a moment ago, by someone else)
                target_id = await session.scalar(
                    select(LinkTarget.id).where(LinkTarget.fingerprint == target.fingerprint)
                )
            if target_id is None:
                raise LookupError("a link target vanished while it was being made")
            payload = signer.sign(target.kind, target_id)
            if by is not None:
                await _audit_link(session, target, payload, created, by, self._clock.now())
        return payload

    async def _stored_secret(self) -> str:
        """The generated secret from the database, made on first use. Two processes starting
        at once both insert-if-absent and then read: they end up with the same secret."""
        async with self._sessions.begin() as session:
            insert = insert_for(session)
            await session.execute(
                insert(Setting)
                .values(
                    key=SECRET_SETTING_KEY,
                    value=secrets.token_urlsafe(32),
                    updated_by=None,
                    updated_at=self._clock.now(),
                )
                .on_conflict_do_nothing(index_elements=[Setting.key])
            )
            stored = await session.scalar(
                select(Setting.value).where(Setting.key == SECRET_SETTING_KEY)
            )
        if not stored:
            raise LookupError("the generated link secret could not be stored")
        return stored


async def _audit_link(
    session: AsyncSession,
    target: LinkTarget,
    payload: str,
    created: bool,
    by: Actor,
    now: datetime,
) -> None:
    """Record an admin's link in the caller's transaction. Every request is recorded, also one
    that gave a link made before: it says who printed which QR code when."""
    place = target.location or ""
    label = f"{place} / {target.staff}" if target.staff else place
    if len(label) > _AUDIT_TARGET_LENGTH:
        label = label[: _AUDIT_TARGET_LENGTH - 1] + "…"
    await AuditRepository(session).record(
        at=now,
        action=LINK_CREATED_ACTION,
        actor_id=by.user_id,
        actor_name=by.name,
        target=label,
        old=None,
        new={
            "location": target.location,
            "staff": target.staff,
            "service": target.service,
            "payload": payload,
            "new_target": created,
        },
    )


# ------------------------------------------------------------------------ URLs and QR codes


def link_url(bot_username: str, payload: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={payload}"


async def location_link(
    links: Links,
    bot_username: str,
    location: str,
    *,
    staff: str | None = None,
    service: str | None = None,
    by: Actor | None = None,
) -> DeepLink:
    """The QR-code link of a location (staff and service optional). ValueError on bad input;
    ``by``: the admin who asked in the chat (audited)."""
    payload = await links.location_payload(location, staff, service, by=by)
    return DeepLink(link_url(bot_username, payload), payload)


async def personal_link(links: Links, bot_username: str, ref: str) -> DeepLink:
    """The personal link of the customer with this ref. ValueError on an empty or long ref."""
    payload = await links.personal_payload(ref)
    return DeepLink(link_url(bot_username, payload), payload)


class BotUsernameUnknown(Exception):
    """Telegram could not tell the bot's username (wrong token, no network)."""


async def bot_username(settings: Settings) -> str:
    """The bot's username (no @): from getMe with the configured token, or the sandbox bot's
    when there is no token. aiogram is imported here, not at the top: it takes seconds to
    import, and `hearback link --bot-username` does not need it."""
    if settings.bot_token is None:
        from bot.sandbox import SANDBOX_BOT_USERNAME

        return SANDBOX_BOT_USERNAME
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramAPIError

    api = settings.telegram_api_url
    session = AiohttpSession(api=TelegramAPIServer.from_base(api)) if api else None
    bot = Bot(token=settings.bot_token.get_secret_value(), session=session)
    try:
        me = await bot.get_me()
    except TelegramAPIError as error:
        raise BotUsernameUnknown(str(error)) from error
    finally:
        await bot.session.close()
    if not me.username:  # every bot has one; a server that says otherwise is not Telegram
        raise BotUsernameUnknown("getMe answered without a username")
    return me.username


async def make_link(
    settings: Settings,
    *,
    location: str | None = None,
    staff: str | None = None,
    service: str | None = None,
    customer_ref: str | None = None,
    username: str | None = None,
) -> DeepLink:
    """A location link (`location`, optional `staff`, `service`) or a personal link
    (`customer_ref`), on a database connection of its own: for the command line. The bot's
    username is `username` when given, else asked from Telegram (see `bot_username`).
    Raises ValueError for bad input, BotUsernameUnknown when Telegram cannot be asked."""
    if (location is None) == (customer_ref is None):
        raise ValueError("give either a location or a customer ref")
    if customer_ref is not None and (staff or service):
        raise ValueError("staff and service belong to location links, not personal ones")
    name = username.lstrip("@") if username else await bot_username(settings)
    if not _BOT_USERNAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a Telegram bot username (5-32 letters, digits, _)")
    engine = create_engine(settings.database_url)
    try:
        links = Links.from_settings(create_session_factory(engine), settings)
        if customer_ref is not None:
            return await personal_link(links, name, customer_ref)
        return await location_link(links, name, location or "", staff=staff, service=service)
    finally:
        await engine.dispose()


def qr_png(url: str, *, scale: int = 10) -> bytes:
    """`url` as a QR code PNG: error correction M or better (a counter sticker gets scuffed),
    the standard 4-module quiet zone, `scale` pixels a module."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def write_qr_png(url: str, path: Path, *, scale: int = 10) -> Path:
    """Write `url` as a QR code PNG file (see `qr_png`), making its folder if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(qr_png(url, scale=scale))
    return path
