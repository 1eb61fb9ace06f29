"""PartnerAdminFacade: operators register the partner apps of the open API (渠道), grant them
scopes and a rate limit, issue and revoke the keys they sign with, suspend and resume them,
and read the trail of every change. Operators only."""

from spyne import ComplexModel, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import GET, OPERATOR, POST, PUT, Facade, operation
from facade.partner.callbacks import (
    CallbackEventsDto,
    CallbackEventsRequest,
    PartnerCallbackDto,
    PartnerCallbackPageDto,
    StatusParam,
)
from facade.types import (
    NOT_BLANK,
    NOT_BLANK_LINE,
    MultilineText,
    PageParam,
    PageSizeParam,
    optional,
    page_fields,
    repeated,
    required,
)

NS = "http://p2p.hry.com/facade/partneradmin"

AppStatus = Enum("ACTIVE", "SUSPENDED", type_name="PartnerAppStatus")
AppStatus.__namespace__ = NS

Scope = Enum(
    "MEMBER_REGISTER",
    "LISTING_READ",
    "MEMBER_INVESTMENT_READ",
    "REPORT_READ",
    "CALLBACK_MANAGE",
    type_name="PartnerScope",
)
Scope.__namespace__ = NS

KeyAlgorithm = Enum("RSA_SHA256", "HMAC_SHA256", type_name="PartnerKeyAlgorithm")
KeyAlgorithm.__namespace__ = NS

KeyStatus = Enum("ACTIVE", "REVOKED", type_name="PartnerKeyStatus")
KeyStatus.__namespace__ = NS

EventAction = Enum(
    "REGISTER",
    "SUSPEND",
    "RESUME",
    "ISSUE_KEY",
    "REVOKE_KEY",
    "SET_CALLBACKS",
    type_name="PartnerAppAction",
)
EventAction.__namespace__ = NS

SCOPE_DOC = (
    "MEMBER_REGISTER (joint registration of the members it brings), LISTING_READ (the "
    "listings it may show), MEMBER_INVESTMENT_READ (the investments and receipts of members "
    "who authorised it), REPORT_READ (its attribution report), CALLBACK_MANAGE (its "
    "callbacks)."
)


class PartnerAppRequest(ComplexModel):
    """A partner app to register."""

    __namespace__ = NS
    _type_info = [
        (
            "name",
            required(
                Unicode(min_len=1, max_len=100, pattern=NOT_BLANK_LINE),
                "The app's name, unique among apps, compared exactly.",
            ),
        ),
        (
            "contact",
            required(
                Unicode(min_len=1, max_len=200, pattern=NOT_BLANK_LINE),
                "Who to reach at the partner (name, e-mail, telephone).",
            ),
        ),
        (
            "callbackUrl",
            optional(
                Unicode(max_len=500, pattern=r"[Hh][Tt][Tt][Pp][Ss]?://\S+"),
                "Where the platform posts the partner's callbacks: an http or https URL "
                "with a host, without user or fragment.",
            ),
        ),
        ("scopes", repeated(Scope, "The scopes granted, at least one: " + SCOPE_DOC)),
        (
            "ratePerMinute",
            required(
                Integer32(ge=1, le=100_000),
                "The app's rate limit: calls a minute (a token bucket refilled at this rate).",
            ),
        ),
        (
            "burst",
            required(Integer32(ge=1, le=10_000), "Calls the app may make at once (the bucket)."),
        ),
    ]


KEY_FIELDS = [
    ("keyId", required(Unicode, "The key id, unique within the app; sent with each call.")),
    ("algorithm", required(KeyAlgorithm, "RSA_SHA256 or HMAC_SHA256.")),
    ("status", required(KeyStatus, "ACTIVE, or REVOKED (nothing it signs is accepted).")),
    (
        "publicKey",
        optional(MultilineText, "An RSA key's public key, PEM (SubjectPublicKeyInfo)."),
    ),
    ("createdAt", required(DateTime, "When it was issued (UTC).")),
    ("revokedAt", optional(DateTime, "When it was revoked (UTC).")),
]


class PartnerKeyDto(ComplexModel):
    """A key a partner app signs its requests with (never its secret)."""

    __namespace__ = NS
    _type_info = KEY_FIELDS


class IssuedPartnerKeyDto(ComplexModel):
    """A key just issued: an HMAC key with its secret, shown this once."""

    __namespace__ = NS
    _type_info = [
        *KEY_FIELDS,
        (
            "secret",
            optional(
                Unicode,
                "An HMAC key's secret (none for an RSA key): it is stored sealed and never "
                "shown again. Hand it to the partner over a safe channel.",
            ),
        ),
    ]


class PartnerAppDto(ComplexModel):
    """A partner app, its settings and its keys."""

    __namespace__ = NS
    _type_info = [
        (
            "appId",
            required(Unicode, "The app's public id, which the partner sends with each call."),
        ),
        ("name", required(Unicode, "Its name.")),
        ("contact", required(Unicode, "Who to reach at the partner.")),
        ("callbackUrl", optional(Unicode, "Where its callbacks are posted.")),
        ("scopes", repeated(Scope, "The scopes granted, sorted.")),
        ("ratePerMinute", required(Integer32, "Calls a minute.")),
        ("burst", required(Integer32, "Calls at once.")),
        ("status", required(AppStatus, "ACTIVE, or SUSPENDED (its calls are refused).")),
        ("createdAt", required(DateTime, "When it was registered (UTC).")),
        ("updatedAt", required(DateTime, "When its status last changed (UTC).")),
        ("keys", repeated(PartnerKeyDto, "Its keys, revoked ones included, oldest first.")),
    ]


class PartnerAppPageDto(ComplexModel):
    """One page of partner apps."""

    __namespace__ = NS
    _type_info = page_fields(PartnerAppDto, "The apps on this page, oldest first.")


class PartnerAppEventDto(ComplexModel):
    """One change an operator made to a partner app or its keys."""

    __namespace__ = NS
    _type_info = [
        ("action", required(EventAction, "What was done.")),
        ("keyId", optional(Unicode, "The key it concerned (ISSUE_KEY, REVOKE_KEY).")),
        ("operatorId", required(Long, "The operator who did it.")),
        ("at", required(DateTime, "When (UTC).")),
        ("reason", optional(MultilineText, "The operator's reason.")),
        ("detail", optional(Unicode, "What it set, as JSON (never a secret).")),
    ]


class PartnerAppEventPageDto(ComplexModel):
    """One page of a partner app's changes."""

    __namespace__ = NS
    _type_info = page_fields(PartnerAppEventDto, "The changes on this page, latest first.")


AppId = required(Unicode(min_len=1, max_len=32, pattern="[a-z0-9]+"), "The app's public id.")
KeyId = required(
    Unicode(min_len=1, max_len=32, pattern="[A-Za-z0-9._-]+"),
    "The key id: 1 to 32 letters, digits, '.', '_' or '-', unique within the app.",
)
Reason = MultilineText(max_len=2000, pattern=NOT_BLANK)


class PartnerAdminFacade(Facade):
    """Partner apps of the open API (渠道) and their keys. Operators only."""

    namespace = NS
    service = "service.partner:PartnerAdminService"

    @operation(
        rest=POST("/partner-apps", body="request", status=201),
        returns=PartnerAppDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NAME_TAKEN",),
    )
    def registerPartnerApp(request: required(PartnerAppRequest, "The app.")):
        """Register a partner app, ACTIVE and without keys; the platform gives it its appId.
        PARTNER_APP_NAME_TAKEN for a name registered already (a repeated registration is
        refused, never a second app). Audited."""

    @operation(
        rest=GET("/partner-apps/{appId}"),
        returns=PartnerAppDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NOT_FOUND",),
    )
    def getPartnerApp(appId: AppId):
        """One partner app with its keys (never an HMAC secret)."""

    @operation(rest=GET("/partner-apps"), returns=PartnerAppPageDto, roles=[OPERATOR])
    def listPartnerApps(
        status: optional(AppStatus, "Only apps in this status."),
        page: PageParam,
        pageSize: PageSizeParam,
    ):
        """Partner apps, oldest first, paged."""

    @operation(
        rest=POST("/partner-apps/{appId}/suspension"),
        returns=PartnerAppDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NOT_FOUND", "PARTNER_APP_STATE_INVALID"),
    )
    def suspendPartnerApp(appId: AppId, reason: required(Reason, "Why; not blank.")):
        """Suspend an ACTIVE app: every call it makes is refused until it is resumed; its
        keys stay as they are. PARTNER_APP_STATE_INVALID if it is suspended already.
        Audited."""

    @operation(
        rest=POST("/partner-apps/{appId}/resumption"),
        returns=PartnerAppDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NOT_FOUND", "PARTNER_APP_STATE_INVALID"),
    )
    def resumePartnerApp(appId: AppId, reason: required(Reason, "Why; not blank.")):
        """Resume a SUSPENDED app. PARTNER_APP_STATE_INVALID if it is ACTIVE. Audited."""

    @operation(
        rest=POST("/partner-apps/{appId}/keys", status=201),
        returns=IssuedPartnerKeyDto,
        roles=[OPERATOR],
        sensitive=True,
        errors=(
            "PARTNER_APP_NOT_FOUND",
            "PARTNER_KEY_EXISTS",
            "PARTNER_KEY_LIMIT_REACHED",
        ),
    )
    def issuePartnerKey(
        appId: AppId,
        keyId: KeyId,
        algorithm: required(KeyAlgorithm, "RSA_SHA256 or HMAC_SHA256."),
        publicKey: optional(
            MultilineText(max_len=4000),
            "RSA_SHA256 only, and required for it: the partner's RSA public key, PEM "
            "(BEGIN PUBLIC KEY), at least 2048 bits.",
        ),
    ):
        """Add a key to an app, beside those it has: a partner rotates by adding the next
        key, signing with it, then revoking the old one, without a refused call. An HMAC
        key's secret is generated and returned in this answer only (SERVICE_UNAVAILABLE
        where the platform has no security.secret_key to seal it with). PARTNER_KEY_EXISTS
        for a key id the app has or had; PARTNER_KEY_LIMIT_REACHED when the app has 5
        active keys. Audited."""

    @operation(
        rest=POST("/partner-apps/{appId}/keys/{keyId}/revocation"),
        returns=PartnerKeyDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NOT_FOUND", "PARTNER_KEY_NOT_FOUND", "PARTNER_KEY_REVOKED"),
    )
    def revokePartnerKey(appId: AppId, keyId: KeyId, reason: required(Reason, "Why; not blank.")):
        """Revoke a key: nothing it signs is accepted from then on. PARTNER_KEY_REVOKED if
        it is revoked already. Audited."""

    @operation(
        rest=GET("/partner-apps/{appId}/events"),
        returns=PartnerAppEventPageDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NOT_FOUND",),
    )
    def listPartnerAppEvents(appId: AppId, page: PageParam, pageSize: PageSizeParam):
        """Every change made to an app and its keys: who, when, what and why, latest
        first, paged."""

    @operation(
        rest=PUT("/partner-apps/{appId}/callback-events", body="request"),
        returns=CallbackEventsDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NOT_FOUND",),
    )
    def setPartnerAppCallbackEvents(
        appId: AppId, request: required(CallbackEventsRequest, "The events.")
    ):
        """Subscribe an app to these callback events, replacing what it had (none: no
        callbacks); the app may set them itself too (PartnerFacade, CALLBACK_MANAGE).
        Audited (SET_CALLBACKS)."""

    @operation(
        rest=GET("/partner-apps/{appId}/callbacks"),
        returns=PartnerCallbackPageDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NOT_FOUND",),
    )
    def listPartnerAppCallbacks(
        appId: AppId, status: StatusParam, page: PageParam, pageSize: PageSizeParam
    ):
        """An app's callback deliveries, newest first, with every attempt, paged."""

    @operation(
        rest=POST("/partner-apps/{appId}/callbacks/{callbackId}/replay", status=201),
        returns=PartnerCallbackDto,
        roles=[OPERATOR],
        errors=("PARTNER_APP_NOT_FOUND", "PARTNER_CALLBACK_NOT_FOUND"),
    )
    def replayPartnerAppCallback(
        appId: AppId, callbackId: required(Long(ge=1), "The delivery to replay.")
    ):
        """Deliver a callback's event to its app again: a new delivery with the same event
        id and body, from the first attempt of the schedule."""
