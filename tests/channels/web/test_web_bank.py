"""Online banking's pages: logging in with the password then the code the login asks for (the
token's from a customer who has one, who can have the SMS code texted instead; the SMS code,
texted at once, from anyone else), the home page with the customer's accounts, and what keeps
the pages safe (CSRF, escaping, headers, idle expiry, the language switch)."""

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.channels.web.templating import templates
from ebank.core.clock import FixedClock
from ebank.core.settings import get_settings
from ebank.core.writer import Writer
from tests.channels.api_support import (
    ONLINE,
    PASSWORD,
    WRONG,
    Person,
    account_with_money,
    customer,
    sms_codes,
    token_code,
)
from tests.channels.web.support import Pages, bank_login, csrf_of
from tests.security.test_security import code_rows, credential_row, other_than
from tests.support import wait_to_resend

TEXT_ME = "动态口令不在身边？改用短信验证码"


def password_step(api: TestClient, person: Person) -> Pages:
    """The login's first step passed: the visitor is at its second."""
    pages = Pages(api)
    asked = pages.submit("/bank/login", "/bank/login", login=person.mobile, password=PASSWORD)
    assert asked.status_code == 200 and 'name="code"' in asked.text, asked.text
    return pages


def asks_for(page: str) -> str:
    """The factor the second step's heading names."""
    return page.split('<h1 id="title">', 1)[1].split("</h1>", 1)[0]


def test_a_customer_logs_in_with_the_sms_code_and_sees_their_accounts(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    number = account_with_money(writer, person, [123_450])
    pages = bank_login(api, engine, person)
    home = pages.last
    assert home is not None
    assert number in home.text
    assert "¥1,234.50" in home.text
    assert "我的账户" in home.text  # zh-CN by default
    assert "客*" in home.text  # the header names them, masked


def test_a_wrong_password_is_shown_beside_the_form_and_sends_no_code(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = Pages(api)
    answer = pages.submit("/bank/login", "/bank/login", login=person.mobile, password=WRONG)
    assert answer.status_code == 401
    assert 'role="alert"' in answer.text and 'name="password"' in answer.text
    assert sms_codes(engine, person.id) == []


def test_an_empty_field_is_named_beside_it(api: TestClient) -> None:
    answer = Pages(api).submit("/bank/login", "/bank/login", login="13900000001", password="")
    assert answer.status_code == 400
    assert 'id="password-error"' in answer.text and "登录密码" in answer.text


def test_a_token_holder_is_asked_for_the_token_code_texted_nothing_and_logs_in_with_it(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = password_step(api, person)
    assert pages.last is not None
    assert asks_for(pages.last.text) == "动态口令" and TEXT_ME in pages.last.text
    assert sms_codes(engine, person.id) == [] and code_rows(engine, person.id) == []
    home = pages.submit("/bank/login", "/bank/login/verify", code=token_code(person, clock))
    assert home.status_code == 200 and home.url.path == "/bank/"


def test_a_customer_without_a_token_is_texted_the_code_and_offered_no_token(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False, enrolled=ONLINE)
    pages = password_step(api, person)
    assert pages.last is not None
    assert asks_for(pages.last.text) == "短信验证码" and TEXT_ME not in pages.last.text
    [code] = sms_codes(engine, person.id)
    home = pages.submit("/bank/login", "/bank/login/verify", code=code)
    assert home.status_code == 200 and home.url.path == "/bank/"


def test_a_token_holder_without_the_token_has_the_code_texted_and_logs_in_with_it(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = password_step(api, person)
    texted = pages.submit("/bank/login", "/bank/login/sms")
    assert texted.status_code == 200 and texted.url.path == "/bank/login"
    assert "本次登录的短信验证码已发送至您的手机。" in texted.text
    assert asks_for(texted.text) == "短信验证码" and TEXT_ME not in texted.text
    [code] = sms_codes(engine, person.id)
    home = pages.submit("/bank/login", "/bank/login/verify", code=code)
    assert home.status_code == 200 and home.url.path == "/bank/"


def test_texting_the_login_code_again_within_a_minute_is_refused_beside_the_code(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = password_step(api, person)
    token = csrf_of(pages.get("/bank/login"))
    assert api.post("/bank/login/sms", data={"csrf": token}).status_code == 200
    again = api.post("/bank/login/sms", data={"csrf": token})  # a double click
    assert again.status_code == 429
    assert 'id="code-error" role="alert">验证码已发送，请 60 秒后再重新获取<' in again.text
    assert len(sms_codes(engine, person.id)) == 1
    wait_to_resend(clock)
    assert api.post("/bank/login/sms", data={"csrf": token}).status_code == 200
    assert len(sms_codes(engine, person.id)) == 2


def test_asking_for_a_text_with_no_login_under_way_goes_back_to_the_first_step(
    api: TestClient,
) -> None:
    answer = Pages(api).submit("/bank/login", "/bank/login/sms")
    assert answer.status_code == 401 and 'name="password"' in answer.text


def test_a_wrong_token_code_keeps_the_customer_on_the_code_step_and_counts(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = password_step(api, person)
    wrong = other_than(token_code(person, clock))
    answer = pages.submit("/bank/login", "/bank/login/verify", code=wrong)
    assert answer.status_code == 401
    assert 'id="code-error"' in answer.text and asks_for(answer.text) == "动态口令"
    assert credential_row(engine, person.id, "login_password")["failures"] == 1
    assert api.get("/bank/", follow_redirects=False).status_code == 303


def test_the_second_step_says_which_code_it_asks_for_in_english_too(
    api: TestClient, writer: Writer
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    api.get("/lang/en?next=/bank/login")
    pages = password_step(api, person)
    assert pages.last is not None
    assert asks_for(pages.last.text) == "Token code"
    assert "No token at hand? Text me a code instead" in pages.last.text
    texted = pages.submit("/bank/login", "/bank/login/sms")
    assert asks_for(texted.text) == "SMS code"
    assert "We have texted a code for this login to your mobile number." in texted.text


def test_a_page_asked_for_without_a_session_goes_to_the_login_and_back_after_it(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    away = api.get("/bank/?from=here", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/bank/login"
    pages = bank_login(api, engine, person)
    assert pages.last is not None and str(pages.last.url).endswith("/bank/?from=here")


def test_a_forged_form_is_refused_and_changes_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    forged = api.post("/bank/logout", data={"csrf": "not-the-token"})
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers
    assert pages.get("/bank/").status_code == 200  # still logged in
    without = api.post("/bank/logout", data={})
    assert without.status_code == 403


def test_a_link_from_another_site_leaves_the_signed_in_visitor_signed_in(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    """The browser withholds the Strict cookie on a cross-site link: the bank answers with a
    page that asks again from its own origin, and sets nothing that could log the visitor out."""
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    signed_in = dict(api.cookies)
    api.cookies.clear()
    arrival = api.get("/bank/payments?x=<b>", headers={"Sec-Fetch-Site": "cross-site"},
                      follow_redirects=False)  # fmt: skip
    assert arrival.status_code == 200 and "set-cookie" not in arrival.headers
    assert '<meta http-equiv="refresh" content="0">' in arrival.text
    assert 'href="/bank/payments?x=%3Cb%3E"' in arrival.text  # the same page, as it came
    api.cookies.update(signed_in)
    again = api.get("/bank/", headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert again.status_code == 200 and pages.get("/bank/").status_code == 200
    # A visitor who has no cookie at all still reaches the login after the bounce.
    api.cookies.clear()
    fresh = api.get("/bank/", headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert fresh.headers["location"] == "/bank/login"


def test_the_form_token_of_one_visitor_does_not_serve_another(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    bank_login(api, engine, person)
    stolen = csrf_of(api.get("/bank/"))
    with TestClient(api.app) as stranger:
        stranger.get("/bank/login")
        assert stranger.post("/bank/logout", data={"csrf": stolen}).status_code == 403


def test_logging_out_ends_the_session(api: TestClient, writer: Writer, engine: Engine) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    out = pages.submit("/bank/", "/bank/logout")
    assert out.url.path == "/bank/login" and "您已安全退出" in out.text
    assert api.get("/bank/", follow_redirects=False).status_code == 303


def test_an_idle_session_ends_and_the_login_says_so(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    bank_login(api, engine, person)
    clock.advance(timedelta(seconds=get_settings().session_idle_seconds + 1))
    assert api.get("/bank/", follow_redirects=False).headers["location"] == "/bank/login"


def test_whatever_a_page_prints_is_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    page = templates.env.from_string(
        '{% import "web/macros.html" as m %}{{ m.field("name", label, {"name": bad}, value=bad) }}'
    ).render(label=hostile, bad=hostile)
    assert "<script>" not in page and page.count("&lt;script&gt;") == 3


def test_pages_carry_a_strict_policy_and_no_inline_script(api: TestClient) -> None:
    page = api.get("/bank/login")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/bank" in cookie
    assert "<script>" not in page.text and " on" + "click=" not in page.text


def test_the_english_switch_changes_the_language_and_returns_to_the_page(
    api: TestClient,
) -> None:
    switched = api.get("/lang/en?next=/bank/login", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/bank/login"
    page = api.get("/bank/login")
    assert "Log in to online banking" in page.text and '<html lang="en">' in page.text
    back = api.get("/lang/zh_CN?next=/bank/login")
    assert "登录个人网上银行" in back.text


def test_the_language_switch_goes_back_to_this_site_only(api: TestClient) -> None:
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        answer = api.get(f"/lang/en?next={elsewhere}", follow_redirects=False)
        assert answer.headers["location"] == "/"
