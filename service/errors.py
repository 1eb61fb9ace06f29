"""The one catalogue of error codes, and the one exception type that carries them.

Every error a caller can see is listed here, in one place a code: a stable code, an HTTP
status for REST (which also says whether it is the caller's fault, SOAP faultcode Client, or
ours, Server), and what the caller is told, in English and in Chinese. That message is one
sentence in one style (tests/unit/service/test_error_catalogue.py enforces it): what is
wrong, then, after a semicolon, what to do when the caller can do something; English ends
with a period, Chinese with 。 and uses Chinese punctuation. A call's details (which field,
which value) are the ``detail`` a service raises the error with, not part of the message.
"""

from dataclasses import dataclass

from service.language import EN, ZH


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: str  # English
    zh: str  # the same in Chinese

    @property
    def client(self) -> bool:
        return self.status < 500

    def text(self, language: str) -> str:
        """The message in ``language`` (service.language: ZH or EN)."""
        return {EN: self.message, ZH: self.zh}[language]


def _codes(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {c.code: c for c in codes}


MALFORMED_REQUEST = ErrorCode(
    "MALFORMED_REQUEST",
    400,
    "The request could not be read; check its syntax and send it again.",
    "请求无法读取；请检查格式后重新发送。",
)
VALIDATION_FAILED = ErrorCode(
    "VALIDATION_FAILED",
    400,
    "A field is missing or invalid; correct it and send the request again.",
    "有字段缺失或无效；请更正后重新发送。",
)
UNAUTHENTICATED = ErrorCode(
    "UNAUTHENTICATED",
    401,
    "No valid credentials came with the request; log in first.",
    "请求未带有效凭证；请先登录。",
)
FORBIDDEN = ErrorCode(
    "FORBIDDEN",
    403,
    "The caller may not do this.",
    "调用方无权执行此操作。",
)
UNKNOWN_OPERATION = ErrorCode(
    "UNKNOWN_OPERATION",
    404,
    "There is no such operation or resource; check the address.",
    "没有这个操作或资源；请检查地址。",
)
METHOD_NOT_ALLOWED = ErrorCode(
    "METHOD_NOT_ALLOWED",
    405,
    "This HTTP method is not allowed here; use one that the Allow header lists.",
    "此处不允许这个 HTTP 方法；请使用 Allow 头列出的方法。",
)
PAYLOAD_TOO_LARGE = ErrorCode(
    "PAYLOAD_TOO_LARGE",
    413,
    "The request body is too large; send a smaller one.",
    "请求体过大；请缩小后重新发送。",
)
UNSUPPORTED_MEDIA_TYPE = ErrorCode(
    "UNSUPPORTED_MEDIA_TYPE",
    415,
    "The request's Content-Type is not accepted; send one that the contract names.",
    "请求的 Content-Type 不被接受；请使用契约规定的类型。",
)
# Refusals of a SOAP envelope that SOAP names with a fault code of its own (server/soap.py).
VERSION_MISMATCH = ErrorCode(
    "VERSION_MISMATCH",
    400,
    "The envelope is neither SOAP 1.1 sent as text/xml nor SOAP 1.2 sent as application/soap+xml.",
    "信封既不是以 text/xml 发送的 SOAP 1.1，也不是以 application/soap+xml 发送的 SOAP 1.2。",
)
MUST_UNDERSTAND = ErrorCode(
    "MUST_UNDERSTAND",
    400,
    "A SOAP header marked mustUnderstand is not understood here; leave it out.",
    "标记为 mustUnderstand 的 SOAP 头无法在此处理；请去掉它。",
)
ACTION_MISMATCH = ErrorCode(
    "ACTION_MISMATCH",
    400,
    "The SOAP 1.2 action is not the one of the operation in the Body; send that one or none.",
    "SOAP 1.2 的 action 与消息体所指的操作不符；请发送该操作的 action 或不发送。",
)
REQUEST_TIMEOUT = ErrorCode(
    "REQUEST_TIMEOUT",
    408,
    "The request did not arrive whole in time; send it again.",
    "请求未能及时完整到达；请重新发送。",
)
HEADERS_TOO_LARGE = ErrorCode(
    "HEADERS_TOO_LARGE",
    431,
    "The request line and headers are too large; send shorter ones.",
    "请求行和请求头过大；请缩短后重新发送。",
)
INTERNAL_ERROR = ErrorCode(
    "INTERNAL_ERROR",
    500,
    "Something went wrong on our side; quote the request id to support.",
    "服务器内部出错；请向客服提供请求编号。",
)
NOT_IMPLEMENTED = ErrorCode(
    "NOT_IMPLEMENTED",
    501,
    "The request uses an HTTP feature this server does not implement; leave it out.",
    "请求使用了本服务器未实现的 HTTP 功能；请去掉该功能。",
)
SERVICE_UNAVAILABLE = ErrorCode(
    "SERVICE_UNAVAILABLE",
    503,
    "The service is temporarily unavailable; try again later.",
    "服务暂时不可用；请稍后再试。",
)
LOGIN_FAILED = ErrorCode(
    "LOGIN_FAILED",
    401,
    "The mobile number or the password is wrong; check both and try again.",
    "手机号或密码错误；请核对后重试。",
)
# 423 Locked, not 429: the account is locked for everyone, whatever client or rate asks.
ACCOUNT_LOCKED = ErrorCode(
    "ACCOUNT_LOCKED",
    423,
    "Too many wrong passwords locked the account for a while; try again later.",
    "密码错误次数过多，账户已暂时锁定；请稍后再试。",
)
MOBILE_TAKEN = ErrorCode(
    "MOBILE_TAKEN",
    409,
    "This mobile number is already registered; log in instead.",
    "该手机号已注册；请直接登录。",
)
MEMBER_NOT_FOUND = ErrorCode(
    "MEMBER_NOT_FOUND",
    404,
    "There is no such member.",
    "没有这个会员。",
)
NOT_A_BORROWER = ErrorCode(
    "NOT_A_BORROWER",
    422,
    "The member is not a borrower.",
    "该会员不是借款人。",
)
LOAN_NOT_FOUND = ErrorCode(
    "LOAN_NOT_FOUND",
    404,
    "There is no such listing; check the loanId.",
    "没有这个标的；请检查 loanId。",
)
LOAN_STATE_INVALID = ErrorCode(
    "LOAN_STATE_INVALID",
    409,
    "The listing's status does not allow this; reload it to see its status.",
    "标的当前状态不允许此操作；请刷新查看其状态。",
)
CONCURRENT_UPDATE = ErrorCode(
    "CONCURRENT_UPDATE",
    409,
    "Someone else changed this at the same time; reload and retry.",
    "有人同时修改了这项数据；请刷新后重试。",
)

INSUFFICIENT_FUNDS = ErrorCode(
    "INSUFFICIENT_FUNDS",
    422,
    "The available balance is too low for this; recharge first.",
    "可用余额不足；请先充值。",
)
REQUEST_NO_REUSED = ErrorCode(
    "REQUEST_NO_REUSED",
    409,
    "This requestNo was already used for a different request; use a new one.",
    "这个 requestNo 已用于另一笔请求；请换一个新的。",
)
RAISING_ENDED = ErrorCode(
    "RAISING_ENDED",
    409,
    "The listing's raising period has ended.",
    "该标的的募集期已结束。",
)
INVEST_BELOW_MINIMUM = ErrorCode(
    "INVEST_BELOW_MINIMUM",
    422,
    "The amount is below the listing's minInvest; invest at least that, or exactly what remains.",
    "金额低于标的的起投金额；请至少投资起投金额，或恰好投满剩余金额。",
)
INVEST_ABOVE_REMAINING = ErrorCode(
    "INVEST_ABOVE_REMAINING",
    409,
    "The amount is more than what remains to be raised; invest at most what remains.",
    "金额超过了剩余可投金额；请最多投资剩余金额。",
)
INVEST_CAP_EXCEEDED = ErrorCode(
    "INVEST_CAP_EXCEEDED",
    422,
    "This would exceed the listing's maxInvestPerInvestor; invest less.",
    "这将超过该标的的单人投资上限；请减少投资金额。",
)
OWN_LOAN = ErrorCode(
    "OWN_LOAN",
    403,
    "A borrower may not invest in their own listing.",
    "借款人不能投资自己的标的。",
)
PAYMENT_ORDER_NOT_FOUND = ErrorCode(
    "PAYMENT_ORDER_NOT_FOUND",
    404,
    "There is no such payment order; check the orderNo.",
    "没有这个支付订单；请检查 orderNo。",
)
INVESTMENT_NOT_FOUND = ErrorCode(
    "INVESTMENT_NOT_FOUND",
    404,
    "There is no such investment; check the investmentId.",
    "没有这笔投资；请检查 investmentId。",
)
MESSAGE_NOT_FOUND = ErrorCode(
    "MESSAGE_NOT_FOUND",
    404,
    "There is no such message; check the messageId.",
    "没有这条消息；请检查 messageId。",
)
VERIFICATION_CODE_INVALID = ErrorCode(
    "VERIFICATION_CODE_INVALID",
    422,
    "The verification code is wrong, used or expired; ask for a new one if needed.",
    "验证码错误、已使用或已过期；如有需要请重新获取。",
)
VERIFICATION_CODE_TOO_SOON = ErrorCode(
    "VERIFICATION_CODE_TOO_SOON",
    429,
    "A code was sent moments ago, or too many today; wait before asking again.",
    "验证码刚刚发送过，或今日发送次数过多；请稍候再获取。",
)
INVITE_CODE_INVALID = ErrorCode(
    "INVITE_CODE_INVALID",
    422,
    "No member has this invite code; check it or leave it out.",
    "没有会员使用这个邀请码；请核对或不填。",
)
IDENTITY_NOT_VERIFIED = ErrorCode(
    "IDENTITY_NOT_VERIFIED",
    403,
    "Real-name verification is required first; verify your identity.",
    "需要先完成实名认证；请先认证身份。",
)
IDENTITY_ALREADY_VERIFIED = ErrorCode(
    "IDENTITY_ALREADY_VERIFIED",
    409,
    "The member's real name is already verified.",
    "该会员已完成实名认证。",
)
ID_NUMBER_TAKEN = ErrorCode(
    "ID_NUMBER_TAKEN",
    409,
    "This ID number is already verified for another member.",
    "该身份证号已被其他会员认证。",
)
UNDERAGE = ErrorCode(
    "UNDERAGE",
    422,
    "Members must be 18 or older.",
    "会员须年满 18 周岁。",
)
CARD_NOT_FOUND = ErrorCode(
    "CARD_NOT_FOUND",
    404,
    "There is no such bound bank card; check the cardId.",
    "没有这张已绑定的银行卡；请检查 cardId。",
)
CARD_TAKEN = ErrorCode(
    "CARD_TAKEN",
    409,
    "This card is already bound; bind another one.",
    "这张卡已被绑定；请绑定其他卡。",
)
CARD_IN_USE = ErrorCode(
    "CARD_IN_USE",
    409,
    "A withdrawal to this card is not final yet; unbind it afterwards.",
    "提现到这张卡的交易尚未完成；请完成后再解绑。",
)
CARD_LIMIT_REACHED = ErrorCode(
    "CARD_LIMIT_REACHED",
    422,
    "The member has bound as many cards as allowed; unbind one first.",
    "已绑定的银行卡数量已达上限；请先解绑一张。",
)
FUND_ACCOUNT_REQUIRED = ErrorCode(
    "FUND_ACCOUNT_REQUIRED",
    403,
    "A fund account at the depository is required; open one first.",
    "需要存管账户；请先开立。",
)
FUND_ACCOUNT_EXISTS = ErrorCode(
    "FUND_ACCOUNT_EXISTS",
    409,
    "The member already has a fund account.",
    "该会员已有存管账户。",
)
FUND_ACCOUNT_REFUSED = ErrorCode(
    "FUND_ACCOUNT_REFUSED",
    422,
    "The depository refused to open the fund account; check the details and try again.",
    "存管银行拒绝开立存管账户；请核对信息后重试。",
)
RECONCILIATION_RUN_NOT_FOUND = ErrorCode(
    "RECONCILIATION_RUN_NOT_FOUND",
    404,
    "There is no reconciliation run for this day.",
    "这一天没有对账记录。",
)
RECONCILIATION_RUNNING = ErrorCode(
    "RECONCILIATION_RUNNING",
    409,
    "This day's reconciliation is running; try again later.",
    "这一天的对账正在进行；请稍后再试。",
)
DISCREPANCY_NOT_FOUND = ErrorCode(
    "DISCREPANCY_NOT_FOUND",
    404,
    "There is no such discrepancy; check the discrepancyId.",
    "没有这条差异；请检查 discrepancyId。",
)
DISCREPANCY_RESOLVED = ErrorCode(
    "DISCREPANCY_RESOLVED",
    409,
    "The discrepancy is already resolved.",
    "这条差异已处理。",
)
RECONCILIATION_UNAVAILABLE = ErrorCode(
    "RECONCILIATION_UNAVAILABLE",
    409,
    "Reconciliation needs the depository bank (payment.gateway BANK).",
    "对账需要存管银行（payment.gateway 为 BANK）。",
)
APPLY_NOT_APPLICABLE = ErrorCode(
    "APPLY_NOT_APPLICABLE",
    422,
    "The bank's outcome cannot be applied here; explain the resolution instead.",
    "银行的结果无法在此应用；请改为说明处理方式。",
)
BANK_ORDER_NOT_FOUND = ErrorCode(
    "BANK_ORDER_NOT_FOUND",
    404,
    "There is no such bank order; check the orderNo.",
    "没有这笔银行订单；请检查 orderNo。",
)
ORDER_NOT_REISSUABLE = ErrorCode(
    "ORDER_NOT_REISSUABLE",
    409,
    "This bank order does not wait for a person to re-issue it.",
    "这笔银行订单不需要人工重发。",
)
PLATFORM_FUNDS_INSUFFICIENT = ErrorCode(
    "PLATFORM_FUNDS_INSUFFICIENT",
    422,
    "The platform's own account holds too little for this; fund it first.",
    "平台自有账户余额不足；请先注资。",
)
PLATFORM_TRANSFER_NOT_FOUND = ErrorCode(
    "PLATFORM_TRANSFER_NOT_FOUND",
    404,
    "There is no such transfer of the platform's own account; check the transferId.",
    "平台自有账户没有这笔转账；请检查 transferId。",
)
PARTNER_APP_NOT_FOUND = ErrorCode(
    "PARTNER_APP_NOT_FOUND",
    404,
    "There is no such partner app; check the appId.",
    "没有这个合作方应用；请检查 appId。",
)
ALREADY_CHECKED_IN = ErrorCode(
    "ALREADY_CHECKED_IN",
    409,
    "You have already checked in this business day (Asia/Shanghai); come back tomorrow.",
    "本业务日（北京时间）已签到；请明天再来。",
)
POINTS_INSUFFICIENT = ErrorCode(
    "POINTS_INSUFFICIENT",
    409,
    "Your unexpired points do not cover this item; earn more points first.",
    "未过期的积分不足以兑换此项；请先积累更多积分。",
)
CATALOGUE_ITEM_UNKNOWN = ErrorCode(
    "CATALOGUE_ITEM_UNKNOWN",
    404,
    "There is no such item in the points catalogue; check the item.",
    "积分目录中没有这一项；请检查兑换项。",
)
EXPERIENCE_INSUFFICIENT = ErrorCode(
    "EXPERIENCE_INSUFFICIENT",
    409,
    "Not enough experience gold is left to invest; invest less.",
    "剩余体验金不足；请减少投资金额。",
)
PARTNER_APP_NAME_TAKEN = ErrorCode(
    "PARTNER_APP_NAME_TAKEN",
    409,
    "A partner app of this name is already registered; choose another name.",
    "已有同名的合作方应用；请换一个名称。",
)
PARTNER_APP_STATE_INVALID = ErrorCode(
    "PARTNER_APP_STATE_INVALID",
    409,
    "The partner app's status does not allow this.",
    "合作方应用的当前状态不允许此操作。",
)
PARTNER_KEY_NOT_FOUND = ErrorCode(
    "PARTNER_KEY_NOT_FOUND",
    404,
    "The partner app has no key with this key id; check the keyId.",
    "该合作方应用没有这个密钥编号的密钥；请检查 keyId。",
)
PARTNER_KEY_EXISTS = ErrorCode(
    "PARTNER_KEY_EXISTS",
    409,
    "The partner app already has a key with this key id; choose another keyId.",
    "该合作方应用已有这个密钥编号的密钥；请换一个 keyId。",
)
PARTNER_KEY_REVOKED = ErrorCode(
    "PARTNER_KEY_REVOKED",
    409,
    "This key is already revoked.",
    "这个密钥已被吊销。",
)
PARTNER_KEY_LIMIT_REACHED = ErrorCode(
    "PARTNER_KEY_LIMIT_REACHED",
    422,
    "The partner app has as many active keys as allowed; revoke one first.",
    "该合作方应用的有效密钥已达上限；请先吊销一个。",
)

# Refusals of a signed partner call (service/partner/auth.py; README "Signed partner calls").
# Each names one cause and nothing a caller without the app's key could not know already.
PARTNER_SIGNATURE_MISSING = ErrorCode(
    "PARTNER_SIGNATURE_MISSING",
    401,
    "A partner operation needs the signature headers; sign the request as the partner guide says.",
    "合作方操作需要签名头；请按合作方指南签名。",
)
PARTNER_APP_UNKNOWN = ErrorCode(
    "PARTNER_APP_UNKNOWN",
    401,
    "No partner app has this app id; check the app id.",
    "没有此应用编号的合作方应用；请检查应用编号。",
)
PARTNER_KEY_UNKNOWN = ErrorCode(
    "PARTNER_KEY_UNKNOWN",
    401,
    "The app has no active key with this key id; sign with an active key.",
    "该应用没有此编号的有效密钥；请用有效密钥签名。",
)
PARTNER_TIMESTAMP_STALE = ErrorCode(
    "PARTNER_TIMESTAMP_STALE",
    401,
    "The timestamp is too far from the platform's clock; send UTC seconds since the epoch.",
    "时间戳与平台时钟相差过大；请发送 UTC 纪元秒数。",
)
PARTNER_SIGNATURE_INVALID = ErrorCode(
    "PARTNER_SIGNATURE_INVALID",
    401,
    "The signature does not match the request; sign the exact bytes sent.",
    "签名与请求不符；请对实际发送的字节签名。",
)
PARTNER_NONCE_REPLAYED = ErrorCode(
    "PARTNER_NONCE_REPLAYED",
    401,
    "This nonce was already used; sign every request with a new nonce.",
    "此随机数已被使用；每个请求请使用新的随机数签名。",
)
PARTNER_APP_SUSPENDED = ErrorCode(
    "PARTNER_APP_SUSPENDED",
    403,
    "The partner app is suspended; contact the platform.",
    "合作方应用已暂停；请联系平台。",
)
PARTNER_SCOPE_MISSING = ErrorCode(
    "PARTNER_SCOPE_MISSING",
    403,
    "The partner app is not granted the scope this operation needs.",
    "合作方应用未被授予此操作所需的权限范围。",
)
PARTNER_RATE_LIMITED = ErrorCode(
    "PARTNER_RATE_LIMITED",
    429,
    "Too many calls; wait the seconds that Retry-After says.",
    "调用过于频繁；请按 Retry-After 所示秒数等待。",
)
PARTNER_IDEMPOTENCY_KEY_MISSING = ErrorCode(
    "PARTNER_IDEMPOTENCY_KEY_MISSING",
    400,
    "A partner call that writes needs an Idempotency-Key: 1 to 64 letters, digits, '-' or '_'.",
    "写操作的合作方调用需要 Idempotency-Key：1 至 64 个字母、数字、'-' 或 '_'。",
)
PARTNER_IDEMPOTENCY_KEY_REUSED = ErrorCode(
    "PARTNER_IDEMPOTENCY_KEY_REUSED",
    409,
    "This Idempotency-Key was used for another request; send a new key for a new request.",
    "该 Idempotency-Key 已用于另一个请求；新请求请使用新的键。",
)
PARTNER_MEMBER_NOT_AUTHORISED = ErrorCode(
    "PARTNER_MEMBER_NOT_AUTHORISED",
    403,
    "The member has not authorised this partner app, or has revoked it.",
    "该会员未授权此合作方应用，或已撤销授权。",
)
PARTNER_CALLBACK_NOT_FOUND = ErrorCode(
    "PARTNER_CALLBACK_NOT_FOUND",
    404,
    "This partner app has no such callback; check the callbackId.",
    "此合作方应用没有这个回调；请检查 callbackId。",
)
PARTNER_AUTHORISATION_NOT_FOUND = ErrorCode(
    "PARTNER_AUTHORISATION_NOT_FOUND",
    404,
    "You have not authorised this partner app; check the appId.",
    "您未授权此合作方应用；请检查 appId。",
)
CAMPAIGN_NOT_FOUND = ErrorCode(
    "CAMPAIGN_NOT_FOUND",
    404,
    "There is no such marketing campaign; check the campaignId.",
    "没有这个营销活动；请检查 campaignId。",
)
CAMPAIGN_NAME_TAKEN = ErrorCode(
    "CAMPAIGN_NAME_TAKEN",
    409,
    "A marketing campaign of this name already exists; choose another name.",
    "已有同名的营销活动；请换一个名称。",
)
CAMPAIGN_INACTIVE = ErrorCode(
    "CAMPAIGN_INACTIVE",
    409,
    "The campaign or coupon template is inactive or outside its dates.",
    "营销活动或券模板未启用或不在有效期内。",
)
CAMPAIGN_BUDGET_EXHAUSTED = ErrorCode(
    "CAMPAIGN_BUDGET_EXHAUSTED",
    409,
    "The campaign's budget does not cover this.",
    "营销活动的预算不足以支付此项。",
)
COUPON_TEMPLATE_NOT_FOUND = ErrorCode(
    "COUPON_TEMPLATE_NOT_FOUND",
    404,
    "There is no such coupon template; check the templateId.",
    "没有这个券模板；请检查 templateId。",
)
COUPON_TIERS_OVERLAP = ErrorCode(
    "COUPON_TIERS_OVERLAP",
    422,
    "The investment tier overlaps another template's of the same kind; make the tiers apart.",
    "投资金额档位与同类模板重叠；请使档位互不重叠。",
)
COUPON_LIMIT_REACHED = ErrorCode(
    "COUPON_LIMIT_REACHED",
    409,
    "No more coupons of this template may be issued (its total or per-member limit).",
    "此模板的券已达发放上限（总数或每人上限）。",
)
COUPON_AUDIENCE_MISMATCH = ErrorCode(
    "COUPON_AUDIENCE_MISMATCH",
    422,
    "The member is not in the template's audience.",
    "该会员不在此模板的发放对象之内。",
)
COUPON_NOT_FOUND = ErrorCode(
    "COUPON_NOT_FOUND",
    404,
    "There is no such coupon; check the couponId.",
    "没有这张券；请检查 couponId。",
)
COUPON_NOT_AVAILABLE = ErrorCode(
    "COUPON_NOT_AVAILABLE",
    409,
    "The coupon is already locked to an investment or used; choose another coupon.",
    "此券已锁定于某笔投资或已使用；请选择其他券。",
)
COUPON_EXPIRED = ErrorCode(
    "COUPON_EXPIRED",
    422,
    "The coupon is not valid at this time; use it within its validity.",
    "此券当前不在有效期内；请在有效期内使用。",
)
COUPON_NOT_APPLICABLE = ErrorCode(
    "COUPON_NOT_APPLICABLE",
    422,
    "The coupon does not apply to this investment's amount, term, method or kind.",
    "此券不适用于本次投资的金额、期限、还款方式或类型。",
)
COUPONS_NOT_STACKABLE = ErrorCode(
    "COUPONS_NOT_STACKABLE",
    422,
    "A coupon that is not stackable cannot be used with another, nor one coupon twice.",
    "不可叠加的券不能与其他券同用，同一张券也不能用两次。",
)

CATALOGUE = _codes(
    MALFORMED_REQUEST,
    VALIDATION_FAILED,
    UNAUTHENTICATED,
    FORBIDDEN,
    UNKNOWN_OPERATION,
    METHOD_NOT_ALLOWED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    VERSION_MISMATCH,
    MUST_UNDERSTAND,
    ACTION_MISMATCH,
    REQUEST_TIMEOUT,
    HEADERS_TOO_LARGE,
    INTERNAL_ERROR,
    NOT_IMPLEMENTED,
    SERVICE_UNAVAILABLE,
    LOGIN_FAILED,
    ACCOUNT_LOCKED,
    MOBILE_TAKEN,
    MEMBER_NOT_FOUND,
    NOT_A_BORROWER,
    LOAN_NOT_FOUND,
    LOAN_STATE_INVALID,
    CONCURRENT_UPDATE,
    INSUFFICIENT_FUNDS,
    REQUEST_NO_REUSED,
    PAYMENT_ORDER_NOT_FOUND,
    INVESTMENT_NOT_FOUND,
    RAISING_ENDED,
    INVEST_BELOW_MINIMUM,
    INVEST_ABOVE_REMAINING,
    INVEST_CAP_EXCEEDED,
    OWN_LOAN,
    MESSAGE_NOT_FOUND,
    VERIFICATION_CODE_INVALID,
    VERIFICATION_CODE_TOO_SOON,
    INVITE_CODE_INVALID,
    IDENTITY_NOT_VERIFIED,
    IDENTITY_ALREADY_VERIFIED,
    ID_NUMBER_TAKEN,
    UNDERAGE,
    CARD_NOT_FOUND,
    CARD_TAKEN,
    CARD_IN_USE,
    CARD_LIMIT_REACHED,
    FUND_ACCOUNT_REQUIRED,
    FUND_ACCOUNT_EXISTS,
    FUND_ACCOUNT_REFUSED,
    RECONCILIATION_RUN_NOT_FOUND,
    RECONCILIATION_RUNNING,
    DISCREPANCY_NOT_FOUND,
    DISCREPANCY_RESOLVED,
    APPLY_NOT_APPLICABLE,
    RECONCILIATION_UNAVAILABLE,
    BANK_ORDER_NOT_FOUND,
    ORDER_NOT_REISSUABLE,
    PLATFORM_FUNDS_INSUFFICIENT,
    PLATFORM_TRANSFER_NOT_FOUND,
    ALREADY_CHECKED_IN,
    POINTS_INSUFFICIENT,
    CATALOGUE_ITEM_UNKNOWN,
    EXPERIENCE_INSUFFICIENT,
    PARTNER_APP_NOT_FOUND,
    PARTNER_APP_NAME_TAKEN,
    PARTNER_APP_STATE_INVALID,
    PARTNER_KEY_NOT_FOUND,
    PARTNER_KEY_EXISTS,
    PARTNER_KEY_REVOKED,
    PARTNER_KEY_LIMIT_REACHED,
    PARTNER_SIGNATURE_MISSING,
    PARTNER_APP_UNKNOWN,
    PARTNER_KEY_UNKNOWN,
    PARTNER_TIMESTAMP_STALE,
    PARTNER_SIGNATURE_INVALID,
    PARTNER_NONCE_REPLAYED,
    PARTNER_APP_SUSPENDED,
    PARTNER_SCOPE_MISSING,
    PARTNER_RATE_LIMITED,
    PARTNER_IDEMPOTENCY_KEY_MISSING,
    PARTNER_IDEMPOTENCY_KEY_REUSED,
    PARTNER_MEMBER_NOT_AUTHORISED,
    PARTNER_CALLBACK_NOT_FOUND,
    PARTNER_AUTHORISATION_NOT_FOUND,
    CAMPAIGN_NOT_FOUND,
    CAMPAIGN_NAME_TAKEN,
    CAMPAIGN_INACTIVE,
    CAMPAIGN_BUDGET_EXHAUSTED,
    COUPON_TEMPLATE_NOT_FOUND,
    COUPON_TIERS_OVERLAP,
    COUPON_LIMIT_REACHED,
    COUPON_AUDIENCE_MISMATCH,
    COUPON_NOT_FOUND,
    COUPON_NOT_AVAILABLE,
    COUPON_EXPIRED,
    COUPON_NOT_APPLICABLE,
    COUPONS_NOT_STACKABLE,
)


class BusinessError(Exception):
    """An error the caller is told about: a catalogue entry and, optionally, its detail (what
    exactly: ``amount: must be above 0``, ``listing 9 does not exist``; English, lower case,
    no final period: the callers see it as ``detail`` beside the catalogue's message) and,
    when the service knows it, how many seconds to wait before trying again
    (``retry_after``, sent as Retry-After by both protocols)."""

    def __init__(
        self, error: ErrorCode, detail: str | None = None, *, retry_after: int | None = None
    ):
        super().__init__(detail or error.message)
        self.error = error
        self.detail = detail or None
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        """The detail, or the catalogue's English message when there is none (for logs)."""
        return self.detail or self.error.message

    @property
    def code(self) -> str:
        return self.error.code


def invalid(field: str, problem: str) -> BusinessError:
    """A VALIDATION_FAILED error that names the field, as ``field: problem``."""
    return BusinessError(VALIDATION_FAILED, f"{field}: {problem}")
