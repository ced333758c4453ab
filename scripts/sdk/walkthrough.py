"""The README walk-through, driven through the Python client generated from openapi.json
(openapi-python-client, no hand edits): click, signup, credit, purchase, 30 days,
commission paid, refund, Partner, payout, e-mail. Each step prints what it did; any
surprise stops the run with a non-zero exit.

Usage: walkthrough.py API_BASE PLATFORM_KEY ADMIN_KEY STRIPE_STAND_IN MAIL_DIR
"""

import sys
import time
import urllib.request
from pathlib import Path

from referral_client import AuthenticatedClient
from referral_client.api.operations import advance_dev_clock
from referral_client.api.payouts import (
    connect_stripe,
    get_stripe_account,
    list_payouts,
    request_payout,
)
from referral_client.api.referrals import (
    create_user,
    get_partner_agreement,
    get_partner_status,
    get_purchase,
    get_stats,
    get_wallet,
    list_commissions,
    record_click,
    record_purchase,
    record_refund,
    upgrade_to_partner,
)
from referral_client.models import (
    AdvanceClock,
    CreateUser,
    OutcomeView,
    RecordClick,
    RecordPurchaseBody,
    RecordPurchaseBodyCurrency,
    RecordRefundBody,
    RecordRefundBodyCurrency,
    RequestPayoutBody,
    SignAgreementBody,
)

api, platform_key, admin_key, stand_in, mail_dir = sys.argv[1:6]
platform = AuthenticatedClient(base_url=api, token=platform_key)
admin = AuthenticatedClient(base_url=api, token=admin_key)
run = str(int(time.time() * 1000))[-8:]
ana, bo = f"ana-{run}", f"bo-{run}"


def step(title):
    print(f"== {title}", flush=True)


def ok(response, status=200):
    """The parsed body of a response that must have `status`."""
    if response.status_code != status:
        sys.exit(f"expected {status}, got {response.status_code}: {response.content!r}")
    return response.parsed


def wait_for(what, check, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def advance_days(days):
    moved = ok(advance_dev_clock.sync_detailed(client=admin, body=AdvanceClock(days=days)))
    print(f"   clock now {moved.now}")


step("1. a referrer and a click on her link")
referrer = ok(create_user.sync_detailed(client=platform, body=CreateUser(user_id=ana, email=f"{ana}@example.com")), 201)
click = ok(record_click.sync_detailed(client=platform, body=RecordClick(referral_code=referrer.user.referral_code)), 201)
print(f"   {ana}: code {referrer.user.referral_code}, click {click.click_id}")

step("2. the visitor signs up carrying the click; $2.50 of credit arrives")
signup = ok(create_user.sync_detailed(client=platform, body=CreateUser(user_id=bo, email=f"{bo}@example.com", click_id=click.click_id)), 201)
assert signup.attribution.attributed, signup
wallet = wait_for("signup credit", lambda: (w := ok(get_wallet.sync_detailed(bo, client=platform))).available.amount == "2.50" and w)
print(f"   {bo} wallet: {wallet.available.amount} {wallet.available.currency}")

step("3. a $50 purchase applying $1.00 of credit: a PENDING commission of $2.45")
purchase = ok(record_purchase.sync_detailed(client=platform, body=RecordPurchaseBody(
    purchase_id=f"pur-{run}", user_id=bo, amount="50.00", currency=RecordPurchaseBodyCurrency.USD,
    outcome=OutcomeView.SUCCEEDED, plan="pro-monthly", credit_applied="1.00")), 201)
assert purchase.commission.amount.amount == "2.45", purchase
print(f"   commission {purchase.commission.amount.amount} {purchase.commission.status}")

step("4. 30 days later the commission is PAID into the referrer's wallet")
advance_days(30)
wait_for("commission paid", lambda: ok(list_commissions.sync_detailed(ana, client=platform)).items[0].status == "PAID")
print(f"   {ana} wallet: {ok(get_wallet.sync_detailed(ana, client=platform)).available.amount}")

step("5. a full refund reverses it")
ok(record_refund.sync_detailed(f"pur-{run}", client=platform, body=RecordRefundBody(
    refund_id=f"re-{run}", amount="49.00", currency=RecordRefundBodyCurrency.USD)), 201)
wait_for("commission reversed", lambda: ok(get_purchase.sync_detailed(f"pur-{run}", client=platform)).commission.status == "REVERSED")
stats = ok(get_stats.sync_detailed(ana, client=platform))
print(f"   stats: {stats.total_referrals} referral(s), {stats.conversions} conversion(s), earned {stats.total_earnings.amount}")

step("6. the referrer becomes a Partner and earns 10 % of a $300 purchase")
agreement = ok(get_partner_agreement.sync_detailed(client=platform))
ok(upgrade_to_partner.sync_detailed(ana, client=platform, body=SignAgreementBody(
    agreement_version=agreement.version, agreement_sha256=agreement.sha256, full_name="Ana Souza")), 201)
ok(record_purchase.sync_detailed(client=platform, body=RecordPurchaseBody(
    purchase_id=f"pur2-{run}", user_id=bo, amount="300.00", currency=RecordPurchaseBodyCurrency.USD,
    outcome=OutcomeView.SUCCEEDED, plan="pro-yearly")), 201)
advance_days(30)
status = wait_for("referral balance", lambda: (s := ok(get_partner_status.sync_detailed(ana, client=platform))).referral_balance.amount == "30.00" and s)
print(f"   referral balance {status.referral_balance.amount}")

step("7. she connects Stripe and finishes onboarding (the local stand-in)")
onboarding = ok(connect_stripe.sync_detailed(ana, client=platform))
with urllib.request.urlopen(onboarding.onboarding_url, timeout=10) as page:
    assert page.status == 200
account = wait_for("payouts enabled", lambda: (a := ok(get_stripe_account.sync_detailed(ana, client=platform))).ready_for_payouts and a)
print(f"   account {account.account_id} ready for payouts")

step("8. a payout of the whole balance; Stripe pays it; the e-mail arrives")
payout = ok(request_payout.sync_detailed(ana, client=platform, body=RequestPayoutBody()), 201)
sent = wait_for("payout processing", lambda: (p := ok(list_payouts.sync_detailed(ana, client=platform)).items[0]).status == "PROCESSING" and p)
with urllib.request.urlopen(urllib.request.Request(f"{stand_in}/_fake/payouts/{sent.stripe_payout_id}/paid", method="POST"), timeout=10) as answer:
    assert answer.status == 200
paid = wait_for("payout paid", lambda: (p := ok(list_payouts.sync_detailed(ana, client=platform)).items[0]).status == "PAID" and p)
mail = wait_for("confirmation e-mail", lambda: next((m for m in Path(mail_dir).glob("*.eml") if str(payout.payout_id) in m.read_text(errors="replace")), None))
subject = next(line for line in mail.read_text(errors="replace").splitlines() if line.startswith("Subject:"))
print(f"   payout {paid.payout_id} {paid.status}, {paid.amount.amount}; e-mail: {subject}")
print("walk-through through the generated SDK: ok")
