"""Member messages (会员消息): the platform writes them, members read them.

:class:`Messages` is the writer other services use. It writes inside the caller's own
transaction, so a message about money exists exactly when the money moved: a refused or
rolled-back call leaves no message behind. Messages carry no personal data (no mobile, ID or
card numbers): they name listings and amounts only. Each is written in Chinese and English
(service.language.Texts) and read in the caller's language; one written before there was
English is read in Chinese, as written.

:class:`MessageService` is the member's side: their own messages only. Another member's
message answers MESSAGE_NOT_FOUND, the same as one that does not exist, so ids tell nothing.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dao.message import MESSAGE_CATEGORIES, MessageEntity, MessageRepository
from dao.types import utcnow
from service import errors
from service.errors import BusinessError
from service.language import DEFAULT, EN, Texts
from service.paging import PageVo, page_window
from service.security import Principal
from service.transaction import transactional

INVESTMENT, DISBURSEMENT, REPAYMENT, SYSTEM, PAYMENT = MESSAGE_CATEGORIES


@dataclass(frozen=True)
class MessageVo:
    message_id: int
    category: str
    title: str
    body: str
    ref_type: str | None
    ref_id: int | None
    read: bool
    read_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class MarkedReadVo:
    marked: int


@dataclass(frozen=True)
class UnreadCountVo:
    unread: int


def _message_vo(m: MessageEntity, language: str) -> MessageVo:
    english = language == EN and m.title_en is not None
    return MessageVo(
        m.id,
        m.category,
        m.title_en if english else m.title,
        m.body_en if english else m.body,
        m.ref_type,
        m.ref_id,
        m.read_at is not None,
        m.read_at,
        m.created_at,
    )


class Messages:
    """Writes messages in the caller's transaction (it never opens or commits one)."""

    def __init__(self, tx, clock: Callable[[], datetime] = utcnow):
        self._repo = MessageRepository(tx.session)
        self._clock = clock

    def write(
        self,
        member_id: int,
        category: str,
        title: Texts,
        body: Texts,
        ref: tuple[str, int] | None = None,
    ) -> int:
        """One message to ``member_id`` in both languages, about ``ref`` (ref_type, ref_id)
        when given; its id."""
        return self._repo.insert(self._row(member_id, category, title, body, ref))

    def write_all(
        self,
        category: str,
        letters: Iterable[tuple[int, Texts, Texts]],
        ref: tuple[str, int] | None = None,
    ) -> None:
        """Messages of one category about one ``ref``, a (member id, title, body) each, in
        one multi-row INSERT (an event may tell thousands of members: every investor of a
        listing repaid); they are not loaded into the session."""
        self.write_each(category, ((m, title, body, ref) for m, title, body in letters))

    def write_each(
        self,
        category: str,
        letters: Iterable[tuple[int, Texts, Texts, tuple[str, int] | None]],
    ) -> None:
        """Messages of one category, a (member id, title, body, ref) each, in one multi-row
        INSERT, not loaded into the session."""
        rows = [self._row(m, category, title, body, ref) for m, title, body, ref in letters]
        if rows:
            self._repo.insert_all(rows)

    def _row(
        self,
        member_id: int,
        category: str,
        title: Texts,
        body: Texts,
        ref: tuple[str, int] | None,
    ) -> dict[str, Any]:
        if category not in MESSAGE_CATEGORIES:
            raise ValueError(f"unknown message category {category!r}")
        ref_type, ref_id = ref if ref is not None else (None, None)
        return {
            "member_id": member_id,
            "category": category,
            "title": title.zh[:100],
            "body": body.zh[:1000],
            "title_en": title.en[:100],
            "body_en": body.en[:1000],
            "ref_type": ref_type,
            "ref_id": ref_id,
            "created_at": self._clock(),
        }


class MessageService:
    """A member's messages: list, read, mark read, count the unread."""

    def __init__(self, tx, settings, clock):
        self.tx = tx
        self._settings = settings  # LiveSettings: api.* is reloadable
        self._clock = clock
        self._repo = MessageRepository(tx.session)

    @transactional(read_only=True)
    def list_messages(
        self,
        caller: Principal,
        page: int | None = None,
        page_size: int | None = None,
        unread_only: bool | None = None,
        language: str = DEFAULT,
    ) -> PageVo[MessageVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.page_of_member(
            caller.member_id,
            unread_only=bool(unread_only),
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        return PageVo(tuple(_message_vo(m, language) for m in rows), total, page, page_size)

    @transactional(read_only=True)
    def get_message(self, message_id: int, caller: Principal, language: str = DEFAULT) -> MessageVo:
        return _message_vo(self._own(message_id, caller), language)

    @transactional
    def mark_read(self, message_id: int, caller: Principal, language: str = DEFAULT) -> MessageVo:
        """Mark one message read; one already read keeps the time it was first read."""
        message = self._own(message_id, caller)
        if message.read_at is None:
            message.read_at = self._clock()
            self.tx.session().flush()
        return _message_vo(message, language)

    @transactional
    def mark_all_read(self, caller: Principal) -> MarkedReadVo:
        return MarkedReadVo(self._repo.mark_all_read(caller.member_id, self._clock()))

    @transactional(read_only=True)
    def get_unread_count(self, caller: Principal) -> UnreadCountVo:
        return UnreadCountVo(self._repo.unread_count(caller.member_id))

    def _own(self, message_id: int, caller: Principal) -> MessageEntity:
        message = self._repo.get(message_id)
        if message is None or message.member_id != caller.member_id:
            # The same answer for someone else's message: its existence is not told.
            raise BusinessError(errors.MESSAGE_NOT_FOUND, f"message {message_id} does not exist")
        return message
