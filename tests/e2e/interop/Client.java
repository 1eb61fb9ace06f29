// A partner's Java client, compiled against what wsimport generated from the served WSDLs
// (wsimport -extension -XadditionalHeaders, so each service has its SOAP 1.2 port too and the
// AuthToken header is a method parameter). Driven by tests/e2e/test_interop_java.py; calls
// every facade on the port of one SOAP version and prints one key=value line per fact it
// observed. Every call carries X-Request-Id java-<version>-<facade>, so the server's access
// log tells which protocol each facade's calls arrived as.
//
// Usage: java Client <1.1|1.2> <server base URL> <operator mobile> <operator password>
//                    <investor mobile> <investor password> <borrowerId>

import com.hry.p2p.facade.account.AccountDto;
import com.hry.p2p.facade.account.AccountFacade;
import com.hry.p2p.facade.account.AccountFacadeService;
import com.hry.p2p.facade.campaign.CampaignFacade;
import com.hry.p2p.facade.campaign.CampaignFacadeService;
import com.hry.p2p.facade.common.AuthToken;
import com.hry.p2p.facade.fund.FundFacade;
import com.hry.p2p.facade.fund.FundFacadeService;
import com.hry.p2p.facade.marketing.MarketingFacade;
import com.hry.p2p.facade.marketing.MarketingFacadeService;
import com.hry.p2p.facade.member.LoginRequest;
import com.hry.p2p.facade.loyalty.LoyaltyFacade;
import com.hry.p2p.facade.loyalty.LoyaltyFacadeService;
import com.hry.p2p.facade.member.MemberFacade;
import com.hry.p2p.facade.member.MemberFacadeService;
import com.hry.p2p.facade.member.TokenDto;
import com.hry.p2p.facade.message.MessageFacade;
import com.hry.p2p.facade.message.MessageFacadeService;
import com.hry.p2p.facade.p2p.BusinessFault;
import com.hry.p2p.facade.p2p.LoanDto;
import com.hry.p2p.facade.p2p.LoanFacade;
import com.hry.p2p.facade.p2p.LoanFacadeService;
import com.hry.p2p.facade.p2p.LoanPageDto;
import com.hry.p2p.facade.p2p.LoanRequest;
import com.hry.p2p.facade.p2p.RepaymentMethod;
import com.hry.p2p.facade.partner.PartnerFacade;
import com.hry.p2p.facade.partner.PartnerFacadeService;
import com.hry.p2p.facade.partneradmin.PartnerAdminFacade;
import com.hry.p2p.facade.partneradmin.PartnerAdminFacadeService;
import com.hry.p2p.facade.payment.PaymentFacade;
import com.hry.p2p.facade.payment.PaymentFacadeService;
import com.hry.p2p.facade.reconciliation.ReconciliationFacade;
import com.hry.p2p.facade.reconciliation.ReconciliationFacadeService;
import com.hry.p2p.facade.treasury.TreasuryFacade;
import com.hry.p2p.facade.treasury.TreasuryFacadeService;
import java.math.BigDecimal;
import java.net.URL;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.MessageContext;

public final class Client {
    private static final BigDecimal AMOUNT = new BigDecimal("10000.01");
    private static final BigDecimal MIN_INVEST = new BigDecimal("100.10");

    private static String version;
    private static String base;

    private Client() {}

    private static void out(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    private static URL wsdl(String facade) throws Exception {
        return new URL(base + "/services/" + facade + "?wsdl");
    }

    /** The port, its every call tagged with the request id java-<version>-<facade>. */
    private static <T> T tagged(T port, String facade) {
        Map<String, List<String>> headers =
                Map.of("X-Request-Id", List.of("java-" + version + "-" + facade));
        ((BindingProvider) port).getRequestContext().put(MessageContext.HTTP_REQUEST_HEADERS, headers);
        return port;
    }

    private static AuthToken login(MemberFacade members, String mobile, String password)
            throws Exception {
        LoginRequest credentials = new LoginRequest();
        credentials.setMobile(mobile);
        credentials.setPassword(password);
        AuthToken auth = new AuthToken();
        auth.setToken(members.login(credentials).getToken());
        return auth;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 7 || !List.of("1.1", "1.2").contains(args[0])) {
            System.err.println("usage: Client 1.1|1.2 BASE_URL OPERATOR_MOBILE OPERATOR_PASSWORD "
                    + "INVESTOR_MOBILE INVESTOR_PASSWORD BORROWER_ID");
            System.exit(2);
        }
        version = args[0];
        base = args[1];
        boolean soap12 = version.equals("1.2");

        MemberFacadeService memberService = new MemberFacadeService(wsdl("MemberFacade"));
        MemberFacade members = tagged(soap12 ? memberService.getMemberFacadeSoap12Port()
                : memberService.getMemberFacadePort(), "MemberFacade");
        LoanFacadeService loanService = new LoanFacadeService(wsdl("LoanFacade"));
        LoanFacade loans = tagged(soap12 ? loanService.getLoanFacadeSoap12Port()
                : loanService.getLoanFacadePort(), "LoanFacade");
        AccountFacadeService accountService = new AccountFacadeService(wsdl("AccountFacade"));
        AccountFacade accounts = tagged(soap12 ? accountService.getAccountFacadeSoap12Port()
                : accountService.getAccountFacadePort(), "AccountFacade");
        FundFacadeService fundService = new FundFacadeService(wsdl("FundFacade"));
        FundFacade funds = tagged(soap12 ? fundService.getFundFacadeSoap12Port()
                : fundService.getFundFacadePort(), "FundFacade");
        MessageFacadeService messageService = new MessageFacadeService(wsdl("MessageFacade"));
        MessageFacade messages = tagged(soap12 ? messageService.getMessageFacadeSoap12Port()
                : messageService.getMessageFacadePort(), "MessageFacade");
        PaymentFacadeService paymentService = new PaymentFacadeService(wsdl("PaymentFacade"));
        PaymentFacade payments = tagged(soap12 ? paymentService.getPaymentFacadeSoap12Port()
                : paymentService.getPaymentFacadePort(), "PaymentFacade");
        ReconciliationFacadeService reconciliationService =
                new ReconciliationFacadeService(wsdl("ReconciliationFacade"));
        ReconciliationFacade reconciliation = tagged(soap12
                ? reconciliationService.getReconciliationFacadeSoap12Port()
                : reconciliationService.getReconciliationFacadePort(), "ReconciliationFacade");
        PartnerAdminFacadeService partnerAdminService =
                new PartnerAdminFacadeService(wsdl("PartnerAdminFacade"));
        PartnerAdminFacade partnerAdmin = tagged(soap12
                ? partnerAdminService.getPartnerAdminFacadeSoap12Port()
                : partnerAdminService.getPartnerAdminFacadePort(), "PartnerAdminFacade");
        PartnerFacadeService partnerService = new PartnerFacadeService(wsdl("PartnerFacade"));
        PartnerFacade partner = tagged(soap12
                ? partnerService.getPartnerFacadeSoap12Port()
                : partnerService.getPartnerFacadePort(), "PartnerFacade");
        LoyaltyFacadeService loyaltyService = new LoyaltyFacadeService(wsdl("LoyaltyFacade"));
        LoyaltyFacade loyalty = tagged(soap12 ? loyaltyService.getLoyaltyFacadeSoap12Port()
                : loyaltyService.getLoyaltyFacadePort(), "LoyaltyFacade");
        TreasuryFacadeService treasuryService = new TreasuryFacadeService(wsdl("TreasuryFacade"));
        TreasuryFacade treasury = tagged(soap12
                ? treasuryService.getTreasuryFacadeSoap12Port()
                : treasuryService.getTreasuryFacadePort(), "TreasuryFacade");
        CampaignFacadeService campaignService = new CampaignFacadeService(wsdl("CampaignFacade"));
        CampaignFacade campaigns = tagged(soap12
                ? campaignService.getCampaignFacadeSoap12Port()
                : campaignService.getCampaignFacadePort(), "CampaignFacade");
        MarketingFacadeService marketingService =
                new MarketingFacadeService(wsdl("MarketingFacade"));
        MarketingFacade marketing = tagged(soap12
                ? marketingService.getMarketingFacadeSoap12Port()
                : marketingService.getMarketingFacadePort(), "MarketingFacade");

        LoginRequest credentials = new LoginRequest();
        credentials.setMobile(args[2]);
        credentials.setPassword(args[3]);
        TokenDto token = members.login(credentials);
        out("login.memberId", token.getMemberId());
        out("login.role", token.getRole());
        out("login.tokenLength", token.getToken().length());
        AuthToken operator = new AuthToken();
        operator.setToken(token.getToken());
        AuthToken investor = login(members, args[4], args[5]);

        // A rate of its own (29.xxxx; the zeep and suds modules use 27 and 28), so the
        // filtered listing below finds this listing alone.
        BigDecimal rate = new BigDecimal("29." + (1000 + (int) (Math.random() * 9000)));
        LoanRequest terms = new LoanRequest();
        terms.setTitle("Workshop " + UUID.randomUUID().toString().substring(0, 6));
        terms.setDescription("Lathes for the workshop.");
        terms.setBorrowerId(Long.parseLong(args[6]));
        terms.setAmount(AMOUNT);
        terms.setAnnualRate(rate);
        terms.setTermMonths(6);
        terms.setRepaymentMethod(RepaymentMethod.BULLET);
        terms.setMinInvest(MIN_INVEST);
        terms.setRaiseDays(7);
        LoanDto published = loans.publishLoan(terms, operator);
        out("publish.loanId", published.getLoanId());
        out("publish.status", published.getStatus().value());
        out("publish.amount", published.getAmount().toPlainString());

        // Pending audit: only operators (and the borrower) see it, so the operator asks.
        LoanDto fetched = loans.getLoan(published.getLoanId(), operator);
        out("get.title", fetched.getTitle());
        out("get.amount", fetched.getAmount().toPlainString());
        // BigDecimal.equals compares the scale too: 10000.01 and nothing else.
        out("get.amountExact", fetched.getAmount().equals(AMOUNT));
        out("get.minInvestExact", fetched.getMinInvest().equals(MIN_INVEST));
        out("get.rateMatches", fetched.getAnnualRate().compareTo(rate) == 0);
        out("get.maxInvestPerInvestor", fetched.getMaxInvestPerInvestor());
        out("get.createdAtYear", fetched.getCreatedAt().getYear());

        LoanPageDto page = loans.listLoans(
                null, RepaymentMethod.BULLET, rate, rate, null, null, 1, 5, operator);
        out("list.total", page.getTotal());
        out("list.firstId", page.getItems().isEmpty() ? "none" : page.getItems().get(0).getLoanId());

        try {
            loans.getLoan(987654321L, null);
            out("missing.fault", "none");
        } catch (BusinessFault e) {
            out("missing.code", e.getFaultInfo().getCode());
            out("missing.message", e.getFaultInfo().getMessage());
            out("missing.detail", e.getFaultInfo().getDetail());
            out("missing.requestIdLength", e.getFaultInfo().getRequestId().length());
        }

        // Every other facade: a call the investor (the operator, for reconciliation and partner
        // apps) may make.
        out("profile.memberId", members.getProfile(investor).getMemberId());
        AccountDto account = accounts.getAccount(investor);
        out("account.memberId", account.getMemberId());
        out("account.totalIsTheSum",
                account.getTotal().equals(account.getAvailable().add(account.getFrozen())));
        out("fund.hasFundAccount", funds.hasFundAccount(investor).isHasFundAccount());
        out("message.unread", messages.getUnreadCount(investor).getUnread());
        out("payment.pageSize", payments.listOrders(1, 4, investor).getPageSize());
        out("reconciliation.pageSize",
                reconciliation.listRuns(null, null, 1, 5, operator).getPageSize());
        out("partnerAdmin.pageSize", partnerAdmin.listPartnerApps(null, 1, 6, operator).getPageSize());
        out("treasury.pageSize",
                treasury.listPlatformTransfers(null, null, null, 1, 7, operator).getPageSize());
        out("loyalty.pageSize", loyalty.listPointEntries(1, 10, investor).getPageSize());
        out("campaign.pageSize", campaigns.listCampaigns(null, 1, 8, operator).getPageSize());
        out("marketing.pageSize", marketing.listCoupons(null, 1, 9, investor).getPageSize());

        // And the same of every facade without credentials: the typed fault of each.
        try {
            loans.publishLoan(terms, null);
            out("refused.LoanFacade", "none");
        } catch (BusinessFault e) {
            out("refused.LoanFacade", e.getFaultInfo().getCode());
        }
        try {
            members.getProfile(null);
            out("refused.MemberFacade", "none");
        } catch (com.hry.p2p.facade.member.BusinessFault e) {
            out("refused.MemberFacade", e.getFaultInfo().getCode());
        }
        try {
            accounts.getAccount(null);
            out("refused.AccountFacade", "none");
        } catch (com.hry.p2p.facade.account.BusinessFault e) {
            out("refused.AccountFacade", e.getFaultInfo().getCode());
        }
        try {
            funds.hasFundAccount(null);
            out("refused.FundFacade", "none");
        } catch (com.hry.p2p.facade.fund.BusinessFault e) {
            out("refused.FundFacade", e.getFaultInfo().getCode());
        }
        try {
            loyalty.getPoints(null);
            out("refused.LoyaltyFacade", "none");
        } catch (com.hry.p2p.facade.loyalty.BusinessFault e) {
            out("refused.LoyaltyFacade", e.getFaultInfo().getCode());
        }
        try {
            messages.getUnreadCount(null);
            out("refused.MessageFacade", "none");
        } catch (com.hry.p2p.facade.message.BusinessFault e) {
            out("refused.MessageFacade", e.getFaultInfo().getCode());
        }
        try {
            payments.listOrders(1, 4, null);
            out("refused.PaymentFacade", "none");
        } catch (com.hry.p2p.facade.payment.BusinessFault e) {
            out("refused.PaymentFacade", e.getFaultInfo().getCode());
        }
        try {
            reconciliation.listRuns(null, null, 1, 5, investor);
            out("refused.ReconciliationFacade", "none");
        } catch (com.hry.p2p.facade.reconciliation.BusinessFault e) {
            out("refused.ReconciliationFacade", e.getFaultInfo().getCode());
        }
        try {
            partnerAdmin.listPartnerApps(null, 1, 6, investor);
            out("refused.PartnerAdminFacade", "none");
        } catch (com.hry.p2p.facade.partneradmin.BusinessFault e) {
            out("refused.PartnerAdminFacade", e.getFaultInfo().getCode());
        }
        try {
            partner.listPartnerListings(1, 2, null);
            out("refused.PartnerFacade", "none");
        } catch (com.hry.p2p.facade.partner.BusinessFault e) {
            out("refused.PartnerFacade", e.getFaultInfo().getCode());
        }
        try {
            treasury.listPlatformTransfers(null, null, null, 1, 7, investor);
            out("refused.TreasuryFacade", "none");
        } catch (com.hry.p2p.facade.treasury.BusinessFault e) {
            out("refused.TreasuryFacade", e.getFaultInfo().getCode());
        }
        try {
            campaigns.listCampaigns(null, 1, 8, investor);
            out("refused.CampaignFacade", "none");
        } catch (com.hry.p2p.facade.campaign.BusinessFault e) {
            out("refused.CampaignFacade", e.getFaultInfo().getCode());
        }
        try {
            marketing.listCoupons(null, 1, 9, null);
            out("refused.MarketingFacade", "none");
        } catch (com.hry.p2p.facade.marketing.BusinessFault e) {
            out("refused.MarketingFacade", e.getFaultInfo().getCode());
        }
    }
}
