"""The customer's API (online and mobile banking): logging in (binding a new mobile device on
the way), and their own accounts, statements, cards, devices and sessions.

Every path that names an object checks that it is the caller's: someone else's account, card
or session answers exactly like one that does not exist (404 with the domain's code).
"""

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import Connection

from ebank.accounts import service as accounts
from ebank.cards import service as cards
from ebank.channels.api.auth import CustomerPrincipal, current_customer
from ebank.channels.api.common import DeviceId, ObjectId, client_address, read, vault_of, write
from ebank.channels.api.payments import CodeSentOut
from ebank.channels.api.schemas import (
    ERRORS,
    AccountOut,
    AccountsOut,
    CardOut,
    CardsOut,
    ChallengeOut,
    CustomerOut,
    DeviceOut,
    DevicesOut,
    LoginCodeIn,
    LoginIn,
    SessionOut,
    SessionsOut,
    StatementLineOut,
    StatementOut,
    TokenOut,
    VerifyIn,
    handed_over,
)
from ebank.core.money import parse_minor
from ebank.customers import service as customers
from ebank.ledger import queries
from ebank.security import devices, login, sessions

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
AccountNumber = Annotated[str, Path(max_length=32)]


# -- logging in ---------------------------------------------------------------------------------
@router.post("/auth/login", tags=["customer: login"], summary="Step 1: password")
async def begin_login(request: Request, body: LoginIn, device: DeviceId = "") -> ChallengeOut:
    """Check the login password of the customer named by resident ID or mobile number.

    On success: a challenge for step 2 and the factor it asks for: the token's code when the
    customer's token can confirm now (no SMS is sent), otherwise the SMS code, sent at once.
    Errors never say which factor was wrong. After the right password: 403 NOT_ENROLLED
    without an enrolment for the channel; on mobile, 403 DEVICE_NOT_BOUND for an unbound
    device, unless `device_name` names it: then this login binds it (`binds_device`), and the
    SMS code for it is sent at once.
    """
    step = await write(
        request,
        login.begin(
            vault_of(request), login=body.login, password=body.password, channel=body.channel,
            device=device, device_name=body.device_name,
        ),
    )  # fmt: skip
    challenge = step.value()
    return ChallengeOut(
        challenge=challenge.token, factors=list(challenge.factors), factor=challenge.factor,
        sms_sent=challenge.sms_sent, expires_at=challenge.expires_at,
        binds_device=challenge.binds_device,
    )  # fmt: skip


@router.post(
    "/auth/login/sms", tags=["customer: login"], summary="Step 2: text me the code instead"
)
async def send_login_code(
    request: Request, body: LoginCodeIn, device: DeviceId = ""
) -> CodeSentOut:
    """Text the SMS code of a login under way, for a token holder without the token at hand;
    step 2 then takes it with `"factor": "sms"`. Within the limits of every code: 429
    CODE_TOO_SOON, CODE_DAILY_LIMIT (with Retry-After). The same `X-Device-ID` as step 1; a
    login that binds a new phone has its code already (403 DEVICE_NOT_BOUND).
    """
    command = login.send_code(vault_of(request), challenge=body.challenge, device=device)
    issued = await write(request, command)
    return CodeSentOut(sms_sent=True, expires_at=issued.expires_at)


@router.post("/auth/login/verify", tags=["customer: login"], summary="Step 2: SMS or token code")
async def complete_login(request: Request, body: VerifyIn, device: DeviceId = "") -> TokenOut:
    """Check the second factor against the challenge; the answer carries the session token.

    A login that binds its device takes the SMS code and the same `device_name` as step 1.
    """
    step = await write(
        request,
        login.complete(
            vault_of(request), challenge=body.challenge, factor=body.factor, code=body.code,
            device=device, device_name=body.device_name, ip=client_address(request),
        ),
    )  # fmt: skip
    return TokenOut(**handed_over(step.value()))


@router.post("/auth/logout", tags=["customer: login"], status_code=204, response_class=Response)
async def logout(request: Request, me: Me) -> None:
    """End the session this request came with."""
    await write(request, sessions.end(customer_id=me.customer_id, session_id=me.session_id))


# -- me -----------------------------------------------------------------------------------------
@router.get("/me", tags=["customer"], summary="Who I am (numbers masked)")
async def whoami(request: Request, me: Me) -> CustomerOut:
    vault = vault_of(request)
    view = await read(request, lambda conn: customers.get_customer(conn, vault, me.customer_id))
    return CustomerOut.of(view)


@router.get("/me/accounts", tags=["customer"], summary="My accounts")
async def my_accounts(request: Request, me: Me) -> AccountsOut:
    held = await read(request, lambda conn: accounts.accounts_of(conn, me.customer_id))
    return AccountsOut(accounts=[AccountOut.of(a) for a in held])


@router.get("/me/accounts/{number}", tags=["customer"], summary="One of my accounts")
async def my_account(request: Request, me: Me, number: AccountNumber) -> AccountOut:
    found = await read(
        request,
        lambda conn: accounts.get_account(conn, number=number, customer_id=me.customer_id),
    )
    return AccountOut.of(found)


@router.get("/me/accounts/{number}/statement", tags=["customer"], summary="My statement")
async def my_statement(
    request: Request,
    me: Me,
    number: AccountNumber,
    since: Annotated[date | None, Query(description="First business day, inclusive")] = None,
    until: Annotated[date | None, Query(description="Last business day, inclusive")] = None,
    min_amount: Annotated[str | None, Query(max_length=24, examples=["100.00"])] = None,
    max_amount: Annotated[str | None, Query(max_length=24)] = None,
    side: Annotated[Literal["D", "C"] | None, Query(description="C: in; D: out")] = None,
    order: Literal["newest", "oldest"] = "newest",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 50,
) -> StatementOut:
    """My account's postings with the running balance, one page at a time."""

    def statement(conn: Connection) -> StatementOut:
        account = accounts.get_account(conn, number=number, customer_id=me.customer_id)

        def amount(text: str | None) -> int | None:
            return None if text is None else parse_minor(text, account.currency)

        page = queries.statement(
            conn, account.ledger_account_id, since=since, until=until,
            min_amount=amount(min_amount), max_amount=amount(max_amount), side=side,
            newest_first=order == "newest", cursor=cursor, limit=limit,
        )  # fmt: skip
        return StatementOut(
            account=account.number, currency=account.currency,
            lines=[StatementLineOut.of(line, account.currency) for line in page.lines],
            next_cursor=page.next_cursor,
        )  # fmt: skip

    return await read(request, statement)


# -- cards --------------------------------------------------------------------------------------
@router.get("/me/cards", tags=["customer"], summary="My cards (numbers masked)")
async def my_cards(request: Request, me: Me) -> CardsOut:
    held = await read(request, lambda conn: cards.cards_of(conn, me.customer_id))
    return CardsOut(cards=[CardOut.of(c) for c in held])


@router.get("/me/cards/{card_id}", tags=["customer"], summary="One of my cards")
async def my_card(request: Request, me: Me, card_id: ObjectId) -> CardOut:
    card = await read(
        request, lambda conn: cards.get_card(conn, card_id, customer_id=me.customer_id)
    )
    return CardOut.of(card)


@router.post(
    "/me/cards/{card_id}/report-loss", tags=["customer"], summary="Report my card lost (挂失)"
)
async def report_loss(request: Request, me: Me, card_id: ObjectId) -> CardOut:
    """Stops the card at once. Final: a replacement card is issued at a branch. Reporting
    again answers the same."""
    card = await write(
        request,
        cards.report_lost(
            vault_of(request), customer_id=me.customer_id, card_id=card_id, channel=me.channel
        ),
    )
    return CardOut.of(card)


# -- devices ------------------------------------------------------------------------------------
@router.get("/me/devices", tags=["customer"], summary="My bound mobile devices")
async def my_devices(request: Request, me: Me) -> DevicesOut:
    bound = await read(request, lambda conn: devices.devices_of(conn, me.customer_id))
    return DevicesOut(devices=[DeviceOut.of(d) for d in bound])


@router.delete(
    "/me/devices/{device_id}", tags=["customer"], status_code=204, response_class=Response,
    summary="Unbind one of my devices",
)  # fmt: skip
async def unbind_device(request: Request, me: Me, device_id: ObjectId) -> None:
    """Mobile banking no longer logs in from it; binding it again takes a login with an SMS
    code. Someone else's device answers 404 DEVICE_NOT_FOUND."""
    await write(
        request,
        devices.unbind(
            customer_id=me.customer_id, device_id=device_id, actor=me.actor, channel=me.channel
        ),
    )


# -- sessions -----------------------------------------------------------------------------------
@router.get("/me/sessions", tags=["customer"], summary="Where I am logged in")
async def my_sessions(request: Request, me: Me) -> SessionsOut:
    now = request.app.state.clock.now()
    live = await read(request, lambda conn: sessions.live_sessions(conn, me.customer_id, now=now))
    return SessionsOut(sessions=[SessionOut.of(s, me.session_id) for s in live])


@router.delete(
    "/me/sessions/{session_id}", tags=["customer"], status_code=204, response_class=Response,
    summary="Log out that device",
)  # fmt: skip
async def end_session(request: Request, me: Me, session_id: ObjectId) -> None:
    await write(
        request,
        sessions.end(customer_id=me.customer_id, session_id=session_id, reason="revoked"),
    )
