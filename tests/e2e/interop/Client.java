// A partner's Java client, compiled against what wsimport generated from the served WSDLs
// (wsimport -XadditionalHeaders, so the AuthToken header is a method parameter). Driven by
// tests/e2e/test_interop_java.py; prints one key=value line per fact it observed.
//
// Usage: java Client <MemberFacade WSDL URL> <LoanFacade WSDL URL> <mobile> <password>
//                    <borrowerId>

import com.hry.p2p.facade.common.AuthToken;
import com.hry.p2p.facade.member.LoginRequest;
import com.hry.p2p.facade.member.MemberFacade;
import com.hry.p2p.facade.member.MemberFacadeService;
import com.hry.p2p.facade.member.TokenDto;
import com.hry.p2p.facade.p2p.BusinessFault;
import com.hry.p2p.facade.p2p.LoanDto;
import com.hry.p2p.facade.p2p.LoanFacade;
import com.hry.p2p.facade.p2p.LoanFacadeService;
import com.hry.p2p.facade.p2p.LoanPageDto;
import com.hry.p2p.facade.p2p.LoanRequest;
import com.hry.p2p.facade.p2p.RepaymentMethod;
import java.math.BigDecimal;
import java.net.URL;
import java.util.UUID;

public final class Client {
    private static final BigDecimal AMOUNT = new BigDecimal("10000.01");
    private static final BigDecimal MIN_INVEST = new BigDecimal("100.10");

    private Client() {}

    private static void out(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: Client MEMBER_WSDL LOAN_WSDL MOBILE PASSWORD BORROWER_ID");
            System.exit(2);
        }
        MemberFacade members = new MemberFacadeService(new URL(args[0])).getMemberFacadePort();
        LoanFacade loans = new LoanFacadeService(new URL(args[1])).getLoanFacadePort();

        LoginRequest credentials = new LoginRequest();
        credentials.setMobile(args[2]);
        credentials.setPassword(args[3]);
        TokenDto token = members.login(credentials, null);
        out("login.memberId", token.getMemberId());
        out("login.role", token.getRole());
        out("login.tokenLength", token.getToken().length());

        AuthToken auth = new AuthToken();
        auth.setToken(token.getToken());
        // A rate of its own (29.xxxx; the zeep and suds modules use 27 and 28), so the
        // filtered listing below finds this listing alone.
        BigDecimal rate = new BigDecimal("29." + (1000 + (int) (Math.random() * 9000)));
        LoanRequest terms = new LoanRequest();
        terms.setTitle("Workshop " + UUID.randomUUID().toString().substring(0, 6));
        terms.setDescription("Lathes for the workshop.");
        terms.setBorrowerId(Long.parseLong(args[4]));
        terms.setAmount(AMOUNT);
        terms.setAnnualRate(rate);
        terms.setTermMonths(6);
        terms.setRepaymentMethod(RepaymentMethod.BULLET);
        terms.setMinInvest(MIN_INVEST);
        terms.setRaiseDays(7);
        LoanDto published = loans.publishLoan(terms, auth);
        out("publish.loanId", published.getLoanId());
        out("publish.status", published.getStatus().value());
        out("publish.amount", published.getAmount().toPlainString());

        // Pending audit: only operators (and the borrower) see it, so the operator asks.
        LoanDto fetched = loans.getLoan(published.getLoanId(), auth);
        out("get.title", fetched.getTitle());
        out("get.amount", fetched.getAmount().toPlainString());
        // BigDecimal.equals compares the scale too: 10000.01 and nothing else.
        out("get.amountExact", fetched.getAmount().equals(AMOUNT));
        out("get.minInvestExact", fetched.getMinInvest().equals(MIN_INVEST));
        out("get.rateMatches", fetched.getAnnualRate().compareTo(rate) == 0);
        out("get.maxInvestPerInvestor", fetched.getMaxInvestPerInvestor());
        out("get.createdAtYear", fetched.getCreatedAt().getYear());

        LoanPageDto page =
                loans.listLoans(null, RepaymentMethod.BULLET, rate, rate, null, null, 1, 5, auth);
        out("list.total", page.getTotal());
        out("list.firstId", page.getItems().isEmpty() ? "none" : page.getItems().get(0).getLoanId());

        try {
            loans.getLoan(987654321L, null);
            out("missing.fault", "none");
        } catch (BusinessFault e) {
            out("missing.code", e.getFaultInfo().getCode());
            out("missing.message", e.getFaultInfo().getMessage());
            out("missing.requestIdLength", e.getFaultInfo().getRequestId().length());
        }

        try {
            loans.publishLoan(terms, null);
            out("anonymous.fault", "none");
        } catch (BusinessFault e) {
            out("anonymous.code", e.getFaultInfo().getCode());
        }
    }
}
