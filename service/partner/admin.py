"""Operators' management of partner apps (PartnerAdminFacade): register, suspend and resume
an app, issue and revoke its keys, and read the trail of what was changed.

An app is registered with a name (unique: registering the same app twice is refused,
PARTNER_APP_NAME_TAKEN, never a second app), the partner's contact, an optional callback URL
(http or https, no user or fragment), the scopes granted (service/partner/scopes.py) and a
rate limit (a token bucket: ratePerMinute tokens a minute, at most burst at once). The
platform gives it a public app id, which the partner sends with every call.

Keys (service/partner/keys.py): each has a key id the operator names (the partner's own name
for it, e.g. "2026-12"), unique within the app, so several are active at once and a partner
rotates by adding the next key, moving its signers over, then revoking the old one; at most
MAX_ACTIVE_KEYS at once (PARTNER_KEY_LIMIT_REACHED). A revoked key is kept, never re-used.

Every change writes a partner_app_event row in the same transaction as the change: who, when,
what, the key it concerned, the operator's reason and what it set (never a secret). Changes to
one app lock its row, so two operators' changes happen one after the other and the key limit
holds. The contact is personal data: never logged.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError

from dao.partner import (
    MAX_CALLBACK_URL,
    MAX_CONTACT,
    MAX_NAME,
    MAX_REASON,
    PartnerAppEntity,
    PartnerAppEventEntity,
    PartnerKeyEntity,
    PartnerRepository,
)
from service import errors
from service.errors import BusinessError, invalid
from service.paging import PageVo, page_window
from service.partner.callbacks import (
    CallbackEventsRequest,
    CallbackEventsVo,
    PartnerCallbacks,
    PartnerCallbackVo,
)
from service.partner.keys import HMAC_SHA256, RSA_SHA256, PartnerKeys
from service.partner.scopes import SCOPES
from service.security import Principal
from service.text import is_blank
from service.transaction import RetryTransaction, transactional

log = logging.getLogger("service.partner")

ACTIVE, SUSPENDED, REVOKED = "ACTIVE", "SUSPENDED", "REVOKED"
MAX_ACTIVE_KEYS = 5
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}\Z")


@dataclass(frozen=True)
class PartnerAppRequest:
    name: str
    contact: str
    callback_url: str | None
    scopes: list[str]
    rate_per_minute: int
    burst: int


@dataclass(frozen=True)
class PartnerKeyVo:
    key_id: str
    algorithm: str
    status: str
    public_key: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class IssuedPartnerKeyVo(PartnerKeyVo):
    secret: str | None  # an HMAC key's, in the answer that issued it only


@dataclass(frozen=True)
class PartnerAppVo:
    app_id: str
    name: str
    contact: str
    callback_url: str | None
    scopes: tuple[str, ...]
    rate_per_minute: int
    burst: int
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    keys: tuple[PartnerKeyVo, ...]


@dataclass(frozen=True)
class PartnerAppEventVo:
    action: str
    key_id: str | None
    operator_id: int
    at: dt.datetime
    reason: str | None
    detail: str | None


class PartnerAdminService:
    def __init__(
        self, tx, settings, clock, partner_keys: PartnerKeys, partner_callbacks: PartnerCallbacks
    ):
        self.tx = tx
        self._settings = settings
        self._clock = clock
        self._keys = partner_keys
        self._callbacks = partner_callbacks
        self._repo = PartnerRepository(tx.session)

    # -- callbacks (service/partner/callbacks.py) -------------------------------------------

    @transactional
    def set_partner_app_callback_events(
        self, app_id: str, request: CallbackEventsRequest, caller: Principal
    ) -> CallbackEventsVo:
        """Audited (SET_CALLBACKS, the events set) in the same transaction."""
        answer = self._callbacks.set_events(app_id, request.events or ())
        detail = {"events": list(answer.events)}
        self._audit(self._app(app_id), "SET_CALLBACKS", caller, detail=detail)
        return answer

    def list_partner_app_callbacks(
        self,
        app_id: str,
        status: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
        caller: Principal | None = None,
    ) -> PageVo[PartnerCallbackVo]:
        return self._callbacks.list_callbacks(app_id, status, page, page_size, self._settings.api)

    def replay_partner_app_callback(
        self, app_id: str, callback_id: int, caller: Principal
    ) -> PartnerCallbackVo:
        return self._callbacks.replay(app_id, callback_id)

    # -- apps ------------------------------------------------------------------------------

    @transactional
    def register_partner_app(self, request: PartnerAppRequest, caller: Principal) -> PartnerAppVo:
        """Register an app, ACTIVE and without keys (see the module's docstring)."""
        _check_app(request)
        if self._repo.app_named(request.name) is not None:
            raise BusinessError(errors.PARTNER_APP_NAME_TAKEN)
        now = self._clock()
        app = PartnerAppEntity(
            app_id="pa" + secrets.token_hex(12),
            name=request.name,
            contact=request.contact,
            callback_url=request.callback_url,
            scopes=" ".join(sorted(set(request.scopes))),
            rate_per_minute=request.rate_per_minute,
            burst=request.burst,
            status=ACTIVE,
            created_by=caller.member_id,
            created_at=now,
            updated_at=now,
        )
        try:
            self._repo.add(app)
        except IntegrityError:  # the same name at this moment: read it again
            raise RetryTransaction(f"partner app {request.name} registered concurrently") from None
        detail = {
            "name": app.name,
            "callbackUrl": app.callback_url,
            "scopes": app.scopes.split(),
            "ratePerMinute": app.rate_per_minute,
            "burst": app.burst,
        }
        self._audit(app, "REGISTER", caller, detail=detail)
        log.info("partner app %s registered by operator %d", app.app_id, caller.member_id)
        return self._app_vo(app)

    @transactional(read_only=True)
    def get_partner_app(self, app_id: str) -> PartnerAppVo:
        return self._app_vo(self._app(app_id))

    @transactional(read_only=True)
    def list_partner_apps(
        self, status: str | None = None, page: int | None = None, page_size: int | None = None
    ) -> PageVo[PartnerAppVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._repo.apps(status, offset=(page - 1) * page_size, limit=page_size)
        return PageVo(tuple(map(self._app_vo, rows)), total, page, page_size)

    @transactional
    def suspend_partner_app(self, app_id: str, reason: str, caller: Principal) -> PartnerAppVo:
        """Suspend an ACTIVE app: its calls are refused until it is resumed; its keys stay."""
        _check_reason(reason)
        return self._move(app_id, ACTIVE, SUSPENDED, "SUSPEND", reason, caller)

    @transactional
    def resume_partner_app(self, app_id: str, reason: str, caller: Principal) -> PartnerAppVo:
        """Resume a SUSPENDED app."""
        _check_reason(reason)
        return self._move(app_id, SUSPENDED, ACTIVE, "RESUME", reason, caller)

    def _move(self, app_id, source, target, action, reason, caller) -> PartnerAppVo:
        app = self._app(app_id, lock=True)
        if app.status != source:
            raise BusinessError(
                errors.PARTNER_APP_STATE_INVALID, f"partner app {app_id} is {app.status}"
            )
        app.status = target
        app.updated_at = self._clock()
        self._audit(app, action, caller, reason=reason)
        log.info("partner app %s %s by operator %d", app_id, target, caller.member_id)
        return self._app_vo(app)

    # -- keys ------------------------------------------------------------------------------

    @transactional
    def issue_partner_key(
        self,
        app_id: str,
        key_id: str,
        algorithm: str,
        caller: Principal,
        public_key: str | None = None,
    ) -> IssuedPartnerKeyVo:
        """Add a key to an app: RSA_SHA256 with the partner's ``public_key``, or HMAC_SHA256
        with a secret generated here, returned in this answer only."""
        if not KEY_ID.match(key_id):
            raise invalid("keyId", "must be 1 to 32 letters, digits, '.', '_' or '-'")
        if algorithm not in (RSA_SHA256, HMAC_SHA256):
            raise invalid("algorithm", f"must be {RSA_SHA256} or {HMAC_SHA256}")
        if (algorithm == RSA_SHA256) != (public_key is not None):
            raise invalid("publicKey", "is required for an RSA_SHA256 key, and only for one")
        app = self._app(app_id, lock=True)
        if self._repo.key(app, key_id) is not None:
            raise BusinessError(errors.PARTNER_KEY_EXISTS, f"key {key_id} exists already")
        if sum(k.status == ACTIVE for k in self._repo.keys(app)) >= MAX_ACTIVE_KEYS:
            raise BusinessError(errors.PARTNER_KEY_LIMIT_REACHED)
        secret = sealed = pem = None
        if algorithm == HMAC_SHA256:
            secret, sealed = self._keys.issue_secret(app.app_id, key_id)
        else:
            pem = self._keys.public_key(public_key)
        key = PartnerKeyEntity(
            app_id=app.id,
            key_id=key_id,
            algorithm=algorithm,
            public_key=pem,
            secret_sealed=sealed,
            status=ACTIVE,
            created_by=caller.member_id,
            created_at=self._clock(),
        )
        self._repo.add(key)
        self._audit(app, "ISSUE_KEY", caller, key_id=key_id, detail={"algorithm": algorithm})
        log.info(
            "partner app %s: %s key %s issued by operator %d",
            app_id,
            algorithm,
            key_id,
            caller.member_id,
        )
        return IssuedPartnerKeyVo(**vars(_key_vo(key)), secret=secret)

    @transactional
    def revoke_partner_key(
        self, app_id: str, key_id: str, reason: str, caller: Principal
    ) -> PartnerKeyVo:
        """Revoke a key: nothing it signs is accepted from then on."""
        _check_reason(reason)
        app = self._app(app_id, lock=True)
        key = self._repo.key(app, key_id)
        if key is None:
            raise BusinessError(errors.PARTNER_KEY_NOT_FOUND, f"partner app {app_id}: {key_id}")
        if key.status == REVOKED:
            raise BusinessError(errors.PARTNER_KEY_REVOKED)
        key.status = REVOKED
        key.revoked_by = caller.member_id
        key.revoked_at = self._clock()
        self._audit(app, "REVOKE_KEY", caller, key_id=key_id, reason=reason)
        log.info("partner app %s: key %s revoked by operator %d", app_id, key_id, caller.member_id)
        return _key_vo(key)

    # -- the trail -------------------------------------------------------------------------

    @transactional(read_only=True)
    def list_partner_app_events(
        self, app_id: str, page: int | None = None, page_size: int | None = None
    ) -> PageVo[PartnerAppEventVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        app = self._app(app_id)
        rows, total = self._repo.events(app, offset=(page - 1) * page_size, limit=page_size)
        return PageVo(tuple(map(_event_vo, rows)), total, page, page_size)

    def _audit(self, app, action, caller, *, key_id=None, reason=None, detail=None) -> None:
        event = PartnerAppEventEntity(
            app_id=app.id,
            action=action,
            key_id=key_id,
            operator_id=caller.member_id,
            at=self._clock(),
            reason=reason,
            detail=None if detail is None else json.dumps(detail, ensure_ascii=False),
        )
        self._repo.add(event)

    def _app(self, app_id: str, *, lock: bool = False) -> PartnerAppEntity:
        app = self._repo.app(app_id, lock=lock)
        if app is None:
            raise BusinessError(errors.PARTNER_APP_NOT_FOUND, f"partner app {app_id}")
        return app

    def _app_vo(self, app: PartnerAppEntity) -> PartnerAppVo:
        return PartnerAppVo(
            app.app_id,
            app.name,
            app.contact,
            app.callback_url,
            tuple(app.scopes.split()),
            app.rate_per_minute,
            app.burst,
            app.status,
            app.created_at,
            app.updated_at,
            tuple(map(_key_vo, self._repo.keys(app))),
        )


def _key_vo(key: PartnerKeyEntity) -> PartnerKeyVo:
    return PartnerKeyVo(
        key.key_id, key.algorithm, key.status, key.public_key, key.created_at, key.revoked_at
    )


def _event_vo(event: PartnerAppEventEntity) -> PartnerAppEventVo:
    return PartnerAppEventVo(
        event.action, event.key_id, event.operator_id, event.at, event.reason, event.detail
    )


def _check_app(request: PartnerAppRequest) -> None:
    """What the contract cannot say alone: lengths, blanks, scopes known, the URL's form."""
    for field, value, most in (
        ("name", request.name, MAX_NAME),
        ("contact", request.contact, MAX_CONTACT),
    ):
        if is_blank(value) or len(value) > most:
            raise invalid(field, f"must not be blank, at most {most} characters")
    unknown = sorted(set(request.scopes) - set(SCOPES))
    if not request.scopes or unknown:
        raise invalid("scopes", f"must name at least one of {', '.join(SCOPES)}")
    if request.callback_url is not None:
        _check_callback_url(request.callback_url)
    if request.rate_per_minute < 1 or request.burst < 1:
        raise invalid("ratePerMinute", "and burst must be at least 1")


def _check_callback_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        len(url) > MAX_CALLBACK_URL
        or not port_ok
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.fragment
    ):
        raise invalid(
            "callbackUrl",
            f"must be an http or https URL of at most {MAX_CALLBACK_URL} characters, with a"
            " host and neither user nor fragment",
        )


def _check_reason(reason: str) -> None:
    if is_blank(reason) or len(reason) > MAX_REASON:
        raise invalid("reason", f"must not be blank, at most {MAX_REASON} characters")
