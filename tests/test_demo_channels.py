"""The local provider serves the WhatsApp, Twilio and SendGrid fakes with known local
credentials; ``relayq provider`` prints the variables that point a worker at them; and
``relayq demo --channel mixed`` delivers through the three adapters to the fakes with
nothing lost and every conversation in order, checked from what the fakes recorded."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from relayq.ops.local_fakes import LOCAL_CREDENTIALS, TWILIO_STATUS_PATH
from relayq.ops.local_provider import ProviderBehaviour, ProviderThread
from relayq.streams.redis_server import free_port
from tests.cli_runner import clean_environment, killing_leftovers, relayq

VARIABLES = (
    "RELAYQ_WHATSAPP_API_URL",
    "RELAYQ_WHATSAPP_TOKEN",
    "RELAYQ_WHATSAPP_PHONE_NUMBER_ID",
    "RELAYQ_TWILIO_API_URL",
    "RELAYQ_TWILIO_ACCOUNT_SID",
    "RELAYQ_TWILIO_AUTH_TOKEN",
    "RELAYQ_TWILIO_FROM",
    "RELAYQ_SENDGRID_API_URL",
    "RELAYQ_SENDGRID_API_KEY",
    "RELAYQ_EMAIL_FROM",
)
CHANNELS = ("whatsapp", "sms", "email")


def whatsapp_text(
    client: httpx.Client, base_url: str, to: str, token: str, number: str
) -> httpx.Response:
    return client.post(
        f"{base_url}/{number}/messages",
        json={"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "hi"}},
        headers={"Authorization": f"Bearer {token}"},
    )


def twilio_sms(client: httpx.Client, base_url: str, form: dict[str, str]) -> httpx.Response:
    c = LOCAL_CREDENTIALS
    basic = base64.b64encode(f"{c.twilio_account_sid}:{c.twilio_auth_token}".encode()).decode()
    return client.post(
        f"{base_url}/2010-04-01/Accounts/{c.twilio_account_sid}/Messages.json",
        data=form,
        headers={"Authorization": f"Basic {basic}"},
    )


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_relayq_provider_prints_the_variables_of_its_fakes_and_they_work(
    tmp_path: Path,
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "relayq.ops.cli", "provider", "--port", str(port)]
    env = clean_environment(tmp_path)
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, cwd=tmp_path) as child:
        try:
            assert child.stdout is not None
            lines = [child.stdout.readline() for _ in range(2 + 2 + len(VARIABLES) + 1)]
        finally:
            child.terminate()  # by its pid
            child.wait(timeout=10)

    assert lines[0].strip() == f"provider listening on http://127.0.0.1:{port}/deliver"
    printed = dict(line.strip().split("=", 1) for line in lines if re.match(r"RELAYQ_\w+=", line))
    assert set(VARIABLES) <= printed.keys()
    assert printed["RELAYQ_DELIVERER"] == "channels"
    assert printed["RELAYQ_WHATSAPP_API_URL"] == f"http://127.0.0.1:{port}/whatsapp"
    assert printed["RELAYQ_TWILIO_API_URL"] == f"http://127.0.0.1:{port}/twilio"
    assert printed["RELAYQ_SENDGRID_API_URL"] == f"http://127.0.0.1:{port}/sendgrid"


def test_the_printed_credentials_are_the_ones_the_fakes_accept() -> None:
    with ProviderThread(fakes=True) as thread, httpx.Client(timeout=5) as client:
        assert thread.provider.fakes is not None
        env = thread.provider.fakes.environment()
        api = env["RELAYQ_WHATSAPP_API_URL"]
        number, token = env["RELAYQ_WHATSAPP_PHONE_NUMBER_ID"], env["RELAYQ_WHATSAPP_TOKEN"]
        accepted = whatsapp_text(client, api, "+15550001111", token, number)
        refused = whatsapp_text(client, api, "+15550001111", "not-the-token", number)
        form = {"To": "+15550001111", "From": env["RELAYQ_TWILIO_FROM"], "Body": "hi"}
        sms = twilio_sms(client, env["RELAYQ_TWILIO_API_URL"], form)
        mail = client.post(
            f"{env['RELAYQ_SENDGRID_API_URL']}/v3/mail/send",
            json={
                "personalizations": [{"to": [{"email": "a@example.com"}]}],
                "from": {"email": env["RELAYQ_EMAIL_FROM"]},
                "subject": "s",
                "content": [{"type": "text/plain", "value": "hi"}],
            },
            headers={"Authorization": f"Bearer {env['RELAYQ_SENDGRID_API_KEY']}"},
        )

    assert accepted.status_code == 200 and accepted.json()["messages"][0]["id"].startswith("wamid.")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == 190
    assert sms.status_code == 201 and sms.json()["sid"].startswith("SM")
    assert mail.status_code == 202 and mail.headers["x-message-id"]
    assert env["RELAYQ_TWILIO_ACCOUNT_SID"] == LOCAL_CREDENTIALS.twilio_account_sid


def test_the_provider_takes_signed_twilio_callbacks_and_refuses_forged_ones() -> None:
    with ProviderThread(fakes=True) as thread, httpx.Client(timeout=5) as client:
        fakes = thread.provider.fakes
        assert fakes is not None
        base = thread.provider.base_url()
        callback = f"{base}{TWILIO_STATUS_PATH}?relayq_id=01TESTID"
        form = {"To": "+15550002222", "From": LOCAL_CREDENTIALS.twilio_from, "Body": "hi"}
        created = twilio_sms(client, f"{base}/twilio", form | {"StatusCallback": callback})
        wait_for(lambda: thread.on_loop(lambda: fakes.twilio_callbacks["delivered"]) == 1)
        forged = client.post(
            callback, data={"MessageStatus": "read"}, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}
        )
        taken = thread.on_loop(lambda: dict(fakes.twilio_callbacks))

    assert created.status_code == 201
    assert forged.status_code == 403
    assert taken == {"sent": 1, "delivered": 1, "bad_signature": 1}


def test_the_provider_rates_reach_the_fakes_in_their_own_error_formats() -> None:
    behaviour = ProviderBehaviour(fail_rate=0.3, throttle_rate=0.3, retry_after=0.5, seed=7)
    with ProviderThread(behaviour, fakes=True) as thread, httpx.Client(timeout=5) as client:
        assert thread.provider.fakes is not None
        env = thread.provider.fakes.environment()
        api, token = env["RELAYQ_WHATSAPP_API_URL"], env["RELAYQ_WHATSAPP_TOKEN"]
        number = env["RELAYQ_WHATSAPP_PHONE_NUMBER_ID"]
        answers = [whatsapp_text(client, api, "+15550003333", token, number) for _ in range(40)]
        stats = client.get(thread.provider.base_url("/local/stats")).json()
        plain = client.post(thread.url, json={})

    errors = {a.json()["error"]["code"]: a for a in answers if a.status_code != 200}
    refused = [a for a in answers if a.status_code != 200]
    assert errors.keys() == {131000, 130429}  # Meta's unknown error, Meta's throughput limit
    assert errors[131000].status_code == 500
    assert errors[130429].status_code == 400 and errors[130429].headers["retry-after"] == "0.5"
    counts = stats["whatsapp"]
    assert counts["requests"] == 40
    assert counts["failed"] + counts["throttled"] == len(refused)
    assert counts["accepted"] == 40 - len(refused)
    assert plain.status_code == 400  # the webhook path is as before: not a webhook body


def test_stop_stops_the_mounted_fakes_callbacks() -> None:
    thread = ProviderThread(fakes=True).start()
    fakes = thread.provider.fakes
    assert fakes is not None
    fakes.twilio.callback_plan.delay = 30.0  # callbacks that would outlive the provider
    base = thread.provider.base_url()
    form = {"To": "+15550004444", "From": LOCAL_CREDENTIALS.twilio_from, "Body": "hi"}
    with httpx.Client(timeout=5) as client:
        twilio_sms(client, f"{base}/twilio", form | {"StatusCallback": base + TWILIO_STATUS_PATH})
    pending = thread.on_loop(lambda: len(fakes.twilio._tasks))
    thread.stop()

    assert pending == 1
    assert not fakes.twilio._tasks  # cancelled, not left pending on a closed loop


def test_demo_mixed_delivers_every_message_in_order_through_the_three_fakes(
    tmp_path: Path,
) -> None:
    env = clean_environment(tmp_path / "home", COLUMNS="250")
    args = ("--messages", "300", "--conversations", "60", "--tenants", "5", "--workers", "2")
    data = str(tmp_path / "demo")
    with killing_leftovers(tmp_path):
        started = time.monotonic()
        done = relayq(
            env, "demo", "--channel", "mixed", *args, "--timeout", "90", "--data-dir", data,
            cwd=tmp_path / "cwd", timeout=150,
        )  # fmt: skip
        seconds = time.monotonic() - started

    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert re.search(r"│ lost\s+│ 0  OK", out), out
    assert re.search(r"│ order violations\s+│ 0 in 0 conversations  OK", out), out
    for channel in CHANNELS:
        line = re.search(rf"│ channel {channel}\s+│ (.*)│", out)
        assert line is not None, out
        assert line.group(1).startswith("100 delivered, 0 dead-lettered, 0 lost, 0 out of order")
        sends = re.search(r"([\d,]+) sends to the fake", line.group(1))
        assert sends is not None and int(sends.group(1).replace(",", "")) >= 100
    assert seconds < 150
