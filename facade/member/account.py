"""MemberFacade's account operations: verification codes, registration, login, sessions,
passwords and SOAP API secrets (WS-Security PasswordDigest)."""

from spyne import ComplexModel, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import DELETE, MEMBERS, POST, operation
from facade.types import optional, required

NS = "http://p2p.hry.com/facade/member"

MemberRole = Enum("INVESTOR", "BORROWER", type_name="MemberRole")
MemberRole.__namespace__ = NS

Mobile = Unicode(min_len=11, max_len=11, pattern="1[3-9][0-9]{9}")
#: A password being checked (login, the old one): any the policy ever allowed.
Password = Unicode(min_len=8, max_len=64)
#: The password policy, for a password being set: 8 to 64 characters with an ASCII letter and
#: an ASCII digit anywhere, in what XSD, ECMA-262 and Python regular expressions read alike.
#: service/member/base.py applies the same (a test keeps the two equal).
NewPassword = Unicode(
    min_len=8,
    max_len=64,
    pattern=r"[^\t\n\r]*([A-Za-z][^\t\n\r]*[0-9]|[0-9][^\t\n\r]*[A-Za-z])[^\t\n\r]*",
)
NewPasswordDoc = "8 to 64 characters, with a letter (A-Z or a-z) and a digit (0-9)."
VerificationCode = Unicode(min_len=6, max_len=6, pattern="[0-9]{6}")
# Either case: a code read out or typed on a phone is taken as it is meant.
InviteCode = Unicode(min_len=8, max_len=8, pattern="[2-9A-HJ-NP-Za-hj-np-z]{8}")

VerificationPurpose = Enum("REGISTER", "RESET_PASSWORD", type_name="VerificationPurpose")
VerificationPurpose.__namespace__ = NS


class VerificationCodeRequest(ComplexModel):
    """Where to send a verification code, and what it is for."""

    __namespace__ = NS
    _type_info = [
        ("mobile", required(Mobile, "Mainland mobile number, 11 digits.")),
        ("purpose", required(VerificationPurpose, "REGISTER or RESET_PASSWORD.")),
    ]


class CodeSentDto(ComplexModel):
    """A code is on its way; the code itself is only in the SMS."""

    __namespace__ = NS
    _type_info = [
        ("expiresIn", required(Integer32, "Seconds the code stays valid.")),
        ("resendAfter", required(Integer32, "Seconds before another code may be asked for.")),
    ]


class RegisterRequest(ComplexModel):
    """A new member: mobile number, password and whether they join to invest or to borrow."""

    __namespace__ = NS
    _type_info = [
        ("mobile", required(Mobile, "Mainland mobile number, 11 digits.")),
        ("password", required(NewPassword, NewPasswordDoc)),
        ("role", required(MemberRole, "INVESTOR or BORROWER.")),
        (
            "verificationCode",
            required(VerificationCode, "The 6-digit code sent for REGISTER to this mobile."),
        ),
        (
            "inviteCode",
            optional(
                InviteCode, "The invite code of the member who invited you, if any (any case)."
            ),
        ),
    ]


class ResetPasswordRequest(ComplexModel):
    """A forgotten password replaced, proven by a code sent to the mobile number."""

    __namespace__ = NS
    _type_info = [
        ("mobile", required(Mobile, "The registered mobile number.")),
        (
            "verificationCode",
            required(VerificationCode, "The 6-digit code sent for RESET_PASSWORD."),
        ),
        ("newPassword", required(NewPassword, NewPasswordDoc)),
    ]


class MemberDto(ComplexModel):
    """A member as others see them: the mobile number is masked."""

    __namespace__ = NS
    _type_info = [
        ("memberId", required(Long, "Member id.")),
        ("mobile", required(Unicode, "Masked mobile number, e.g. 138****5678.")),
        ("role", required(Unicode, "INVESTOR, BORROWER or OPERATOR.")),
        ("createdAt", required(DateTime, "When the member registered (UTC).")),
        (
            "inviteCode",
            optional(
                Unicode,
                "The member's invite code (邀请码): whom they invite gives it when signing "
                "up (getPromotion shows it too). Operators have none.",
            ),
        ),
    ]


class LoginRequest(ComplexModel):
    """Credentials for login."""

    __namespace__ = NS
    _type_info = [
        ("mobile", required(Mobile, "The registered mobile number.")),
        ("password", required(Password, "The member's password.")),
    ]


class TokenDto(ComplexModel):
    """A login token: send it as "Authorization: Bearer <token>" or in the AuthToken header."""

    __namespace__ = NS
    _type_info = [
        ("token", required(Unicode, "The token.")),
        ("expiresIn", required(Integer32, "Seconds until the token expires.")),
        ("memberId", required(Long, "The member the token belongs to.")),
        ("role", required(Unicode, "The member's role.")),
        (
            "refreshToken",
            optional(Unicode, "Trade it in once, with refreshToken, for a new pair."),
        ),
        ("refreshExpiresIn", optional(Integer32, "Seconds until the refresh token expires.")),
    ]


class RefreshRequest(ComplexModel):
    """A refresh token from login or from the last refresh."""

    __namespace__ = NS
    _type_info = [
        ("refreshToken", required(Unicode(max_len=128), "The refresh token, used once.")),
    ]


class ChangePasswordRequest(ComplexModel):
    """The current password and the new one."""

    __namespace__ = NS
    _type_info = [
        ("oldPassword", required(Password, "The current login password.")),
        ("newPassword", required(NewPassword, NewPasswordDoc)),
    ]


class ApiSecretRequest(ComplexModel):
    """The login password again, to issue a SOAP API secret."""

    __namespace__ = NS
    _type_info = [
        ("password", required(Password, "The member's login password.")),
    ]


class ApiSecretDto(ComplexModel):
    """A SOAP API secret, shown this once: the password of a WS-Security PasswordDigest."""

    __namespace__ = NS
    _type_info = [
        ("apiSecret", required(Unicode, "The secret; the platform never shows it again.")),
        ("username", required(Unicode, "The UsernameToken's Username: the mobile number.")),
        (
            "maxSkewSeconds",
            required(Integer32, "How far Created may be from the server's clock, in seconds."),
        ),
    ]


class AccountOperations:
    """Signing up, signing in and the credentials of a member."""

    @operation(
        rest=POST("/verification-codes", body="request", status=201),
        returns=CodeSentDto,
        errors=("MOBILE_TAKEN", "VERIFICATION_CODE_TOO_SOON"),
    )
    def sendVerificationCode(request: required(VerificationCodeRequest, "Number and purpose.")):
        """Send a 6-digit code by SMS for REGISTER (MOBILE_TAKEN when the number is
        registered) or RESET_PASSWORD (answered alike for numbers not registered or disabled,
        which are sent nothing). The code is never in a response. A new code replaces the
        former one; VERIFICATION_CODE_TOO_SOON within resendAfter seconds of the last for the
        same purpose, or past the daily count of a number."""

    @operation(
        rest=POST("/members", body="request", status=201),
        returns=MemberDto,
        errors=("INVITE_CODE_INVALID", "MOBILE_TAKEN", "VERIFICATION_CODE_INVALID"),
    )
    def register(request: required(RegisterRequest, "The new member.")):
        """Register a member as an investor or a borrower, with the code sent for REGISTER
        (VERIFICATION_CODE_INVALID when wrong, used or expired; five wrong entries void it)
        and optionally the invite code of the member who invited them (INVITE_CODE_INVALID
        when no investor or borrower has it). A request refused for its fields, a taken
        number (MOBILE_TAKEN) or its invite code leaves the code unused. Operators are
        created by the p2p create-operator command, never here."""

    @operation(
        rest=POST("/members/password-reset", body="request"), errors=("VERIFICATION_CODE_INVALID",)
    )
    def resetPassword(request: required(ResetPasswordRequest, "Number, code, new password.")):
        """Set a new password with the code sent for RESET_PASSWORD; every token and the
        SOAP API secret of the member stop working, and a lockout of the number ends. A
        wrong or expired code is VERIFICATION_CODE_INVALID, whether or not the number is
        registered."""

    @operation(
        rest=POST("/sessions", body="request", status=201),
        returns=TokenDto,
        sensitive=True,
        errors=("LOGIN_FAILED",),
    )
    def login(request: required(LoginRequest, "The credentials.")):
        """Log in with mobile number and password; returns a token valid for expiresIn
        seconds on every worker."""

    @operation(rest=DELETE("/sessions/current"), roles=MEMBERS)
    def logout():
        """End the caller's session: the token and its refresh token stop working at once."""

    @operation(
        rest=POST("/sessions/refresh", body="request", status=201),
        returns=TokenDto,
        sensitive=True,
    )
    def refreshToken(request: required(RefreshRequest, "The refresh token.")):
        """Trade a refresh token in for a new access token and refresh token; the one traded
        in and the access token issued with it stop working. A refresh token presented a
        second time ends every session descending from its login (UNAUTHENTICATED)."""

    @operation(
        rest=POST("/members/current/password", body="request"),
        roles=MEMBERS,
        errors=("LOGIN_FAILED", "MEMBER_NOT_FOUND"),
    )
    def changePassword(request: required(ChangePasswordRequest, "Old and new password.")):
        """Change the caller's login password. The old one is checked (a wrong one counts
        toward the lockout); afterwards every token of the member, the caller's included,
        stops working: log in again with the new password."""

    @operation(
        rest=POST("/members/current/api-secret", body="request", status=201),
        roles=MEMBERS,
        returns=ApiSecretDto,
        sensitive=True,
        errors=("LOGIN_FAILED", "MEMBER_NOT_FOUND"),
    )
    def rotateApiSecret(request: required(ApiSecretRequest, "The login password.")):
        """Issue the caller a new SOAP API secret for WS-Security PasswordDigest
        (Base64(SHA-1(nonce + created + apiSecret))), replacing any former one at once. It is
        returned only here. SERVICE_UNAVAILABLE when the platform has no security.secret_key."""

    @operation(
        rest=DELETE("/members/current/api-secret"), roles=MEMBERS, errors=("MEMBER_NOT_FOUND",)
    )
    def revokeApiSecret():
        """Remove the caller's SOAP API secret: PasswordDigest stops working for them."""
