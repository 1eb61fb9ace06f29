"""A partner's callbacks (scope CALLBACK_MANAGE): the events its app subscribes to, the
deliveries with every attempt, and replays. The DTOs serve PartnerAdminFacade too."""

from spyne import ComplexModel, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import GET, POST, PUT, operation
from facade.partner.listings import NS
from facade.types import PageParam, PageSizeParam, optional, page_fields, repeated, required

CALLBACK_MANAGE = "CALLBACK_MANAGE"

EventType = Enum(
    "MEMBER_REGISTERED",
    "INVESTMENT_CONFIRMED",
    "LISTING_FULL",
    "REPAYMENT_PAID",
    type_name="PartnerCallbackEvent",
)
EventType.__namespace__ = NS

CallbackStatus = Enum("PENDING", "ACKED", "EXPIRED", type_name="PartnerCallbackStatus")
CallbackStatus.__namespace__ = NS

EVENTS_DOC = (
    "MEMBER_REGISTERED (a member the app registered), INVESTMENT_CONFIRMED (an investment "
    "of a member who authorised it took money), REPAYMENT_PAID (a receipt paid to such a "
    "member), LISTING_FULL (any listing)."
)


class CallbackEventsRequest(ComplexModel):
    """The events an app subscribes to (replacing what it had)."""

    __namespace__ = NS
    _type_info = [("events", repeated(EventType, "The events, none or more: " + EVENTS_DOC))]


class CallbackEventsDto(ComplexModel):
    """What an app subscribes to, and where its callbacks go."""

    __namespace__ = NS
    _type_info = [
        ("appId", required(Unicode, "The app.")),
        ("callbackUrl", optional(Unicode, "Where callbacks are posted; absent: none is sent.")),
        ("events", repeated(EventType, "The events subscribed to: " + EVENTS_DOC)),
    ]


class CallbackAttemptDto(ComplexModel):
    """One attempt at delivering a callback."""

    __namespace__ = NS
    _type_info = [
        ("number", required(Integer32, "1 for the first attempt.")),
        ("at", required(DateTime, "When it was made (UTC).")),
        ("httpStatus", optional(Integer32, "The partner's HTTP status; absent: none came.")),
        (
            "outcome",
            required(
                Unicode,
                "ACKED (a 2xx), HTTP_ERROR (another status), TIMEOUT, CONNECTION_FAILED, "
                "NO_CALLBACK_URL, APP_SUSPENDED or NO_SIGNING_KEY.",
            ),
        ),
    ]


class PartnerCallbackDto(ComplexModel):
    """One delivery of an event to the app."""

    __namespace__ = NS
    _type_info = [
        ("callbackId", required(Long, "The delivery's id.")),
        ("eventId", required(Unicode, "The event's id (X-P2P-Event-Id); a replay keeps it.")),
        ("eventType", required(EventType, "What happened.")),
        (
            "status",
            required(
                CallbackStatus,
                "PENDING (attempts go on), ACKED (a 2xx answered) or EXPIRED (the schedule "
                "ran out).",
            ),
        ),
        ("attempts", required(Integer32, "Attempts made.")),
        ("createdAt", required(DateTime, "When it was written (UTC).")),
        ("nextAttemptAt", optional(DateTime, "When the next attempt is due (UTC), if PENDING.")),
        ("finishedAt", optional(DateTime, "When it was ACKED or EXPIRED (UTC).")),
        ("replayOf", optional(Long, "The first delivery of the event, for a replay.")),
        ("attemptLog", repeated(CallbackAttemptDto, "Each attempt, the first first.")),
    ]


class PartnerCallbackPageDto(ComplexModel):
    """One page of deliveries, newest first."""

    __namespace__ = NS
    _type_info = page_fields(PartnerCallbackDto, "The deliveries on this page.")


StatusParam = optional(CallbackStatus, "Only deliveries in this status.")
IDEMPOTENT = ("PARTNER_IDEMPOTENCY_KEY_MISSING", "PARTNER_IDEMPOTENCY_KEY_REUSED")


class PartnerCallbackOperations:
    """The app's callbacks (CALLBACK_MANAGE)."""

    @operation(
        rest=GET("/partner/callback-events"),
        returns=CallbackEventsDto,
        partner_scope=CALLBACK_MANAGE,
    )
    def getPartnerCallbackEvents():
        """The events the app subscribes to and its callback URL. Signed partner call, scope
        CALLBACK_MANAGE."""

    @operation(
        rest=PUT("/partner/callback-events", body="request"),
        returns=CallbackEventsDto,
        errors=IDEMPOTENT,
        partner_scope=CALLBACK_MANAGE,
    )
    def setPartnerCallbackEvents(request: required(CallbackEventsRequest, "The events.")):
        """Subscribe the app to these events, replacing what it had (none: no callbacks).
        Needs an Idempotency-Key. Signed partner call, scope CALLBACK_MANAGE."""

    @operation(
        rest=GET("/partner/callbacks"),
        returns=PartnerCallbackPageDto,
        partner_scope=CALLBACK_MANAGE,
    )
    def listPartnerCallbacks(status: StatusParam, page: PageParam, pageSize: PageSizeParam):
        """The app's callback deliveries, newest first, with every attempt, paged. Signed
        partner call, scope CALLBACK_MANAGE."""

    @operation(
        rest=POST("/partner/callbacks/{callbackId}/replay", status=201),
        returns=PartnerCallbackDto,
        errors=("PARTNER_CALLBACK_NOT_FOUND", *IDEMPOTENT),
        partner_scope=CALLBACK_MANAGE,
    )
    def replayPartnerCallback(callbackId: required(Long(ge=1), "The delivery to replay.")):
        """Deliver the callback's event again: a new delivery with the same event id and
        body, from the first attempt of the schedule (PARTNER_CALLBACK_NOT_FOUND for another
        app's or none). Needs an Idempotency-Key. Signed partner call, scope
        CALLBACK_MANAGE."""
