"""MemberFacade: registration, login and logout of the platform's members, and their SOAP
API secrets (WS-Security PasswordDigest)."""

from spyne import ComplexModel, DateTime, Enum, Integer32, Long, Unicode

from facade.contract import DELETE, MEMBERS, POST, Facade, operation
from facade.types import optional, required

NS = "http://p2p.hry.com/facade/member"

MemberRole = Enum("INVESTOR", "BORROWER", type_name="MemberRole")
MemberRole.__namespace__ = NS

Mobile = Unicode(min_len=11, max_len=11, pattern="1[3-9][0-9]{9}")
Password = Unicode(min_len=8, max_len=64)


class RegisterRequest(ComplexModel):
    """A new member: mobile number, password and whether they join to invest or to borrow."""

    __namespace__ = NS
    _type_info = [
        ("mobile", required(Mobile, "Mainland mobile number, 11 digits.")),
        ("password", required(Password, "8 to 64 characters, with a letter and a digit.")),
        ("role", required(MemberRole, "INVESTOR or BORROWER.")),
    ]


class MemberDto(ComplexModel):
    """A member as others see them: the mobile number is masked."""

    __namespace__ = NS
    _type_info = [
        ("memberId", required(Long, "Member id.")),
        ("mobile", required(Unicode, "Masked mobile number, e.g. 138****5678.")),
        ("role", required(Unicode, "INVESTOR, BORROWER or OPERATOR.")),
        ("createdAt", required(DateTime, "When the member registered (UTC).")),
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
        ("newPassword", required(Password, "8 to 64 characters, with a letter and a digit.")),
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


class MemberFacade(Facade):
    """Members of the platform: investors, borrowers and operators."""

    namespace = NS
    service = "service.member:MemberService"

    @operation(rest=POST("/members", body="request", status=201), returns=MemberDto)
    def register(request: required(RegisterRequest, "The new member.")):
        """Register a member as an investor or a borrower. Operators are created by the
        p2p create-operator command, never here."""

    @operation(rest=POST("/sessions", body="request", status=201), returns=TokenDto)
    def login(request: required(LoginRequest, "The credentials.")):
        """Log in with mobile number and password; returns a token valid for expiresIn
        seconds on every worker."""

    @operation(rest=DELETE("/sessions/current"), roles=MEMBERS)
    def logout():
        """End the caller's session: the token and its refresh token stop working at once."""

    @operation(rest=POST("/sessions/refresh", body="request", status=201), returns=TokenDto)
    def refreshToken(request: required(RefreshRequest, "The refresh token.")):
        """Trade a refresh token in for a new access token and refresh token; the one traded
        in and the access token issued with it stop working. A refresh token presented a
        second time ends every session descending from its login (UNAUTHENTICATED)."""

    @operation(rest=POST("/members/current/password", body="request"), roles=MEMBERS)
    def changePassword(request: required(ChangePasswordRequest, "Old and new password.")):
        """Change the caller's login password. The old one is checked (a wrong one counts
        toward the lockout); afterwards every token of the member, the caller's included,
        stops working: log in again with the new password."""

    @operation(
        rest=POST("/members/current/api-secret", body="request", status=201),
        roles=MEMBERS,
        returns=ApiSecretDto,
    )
    def rotateApiSecret(request: required(ApiSecretRequest, "The login password.")):
        """Issue the caller a new SOAP API secret for WS-Security PasswordDigest
        (Base64(SHA-1(nonce + created + apiSecret))), replacing any former one at once. It is
        returned only here. SERVICE_UNAVAILABLE when the platform has no security.secret_key."""

    @operation(rest=DELETE("/members/current/api-secret"), roles=MEMBERS)
    def revokeApiSecret():
        """Remove the caller's SOAP API secret: PasswordDigest stops working for them."""
