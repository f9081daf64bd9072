"""The carts console's pages: the list (filters, tabs, sort, search, paging), the cart drawer and page,
sending one and in bulk, the template editor, the suppression list and the Mailbox; permissions by role;
HubSpot text escaped."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from carts.mailbox import Mailbox
from carts.models import (
    BulkSend,
    Cart,
    CartEvent,
    EmailState,
    EventKind,
    RecoverySend,
    RecoveryTemplate,
    SendStatus,
    Suppression,
    SuppressionSource,
)
from hubspot_sync.models import Association, Contact, LineItem
from tests import factories

pytestmark = pytest.mark.django_db

HOSTILE_NAME = "<script>alert('x')</script>\u202eevil" + "W" * 300
OLD = timedelta(hours=3)


def make_cart(n: int, **values: Any) -> Cart:
    defaults: dict[str, Any] = {
        "hubspot_id": str(90_000 + n),
        "name": f"Cart {n}",
        "status": "abandoned",
        "cart_url": f"https://shop.example/cart/{n}",
        "total": Decimal("10.00") + n,
        "currency": "EUR",
        "store": "North",
        "customer_name": f"Kim {n}",
        "customer_email": f"kim{n}@example.com",
        "remote_updated_at": timezone.now() - OLD - timedelta(minutes=n),
    }
    defaults.update(values)
    return Cart.objects.create(**defaults)


def htmx(client: Client, url: str, target: str, **params: Any) -> Any:
    return client.get(url, params, headers={"HX-Request": "true", "HX-Target": target})


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(factories.pipeline_admin())
    return client


# --- the list -----------------------------------------------------------------------------------------------


class TestList:
    def test_states_the_definitions_and_counts_each_state(
        self, support_client: Client, settings: Any
    ) -> None:
        settings.CARTS_ABANDONED_AFTER_MIN = 45
        make_cart(1)
        make_cart(2, cart_url="")
        make_cart(3, email_state=EmailState.EMAILED, last_email_at=timezone.now())
        make_cart(4, customer_email="gone@example.com")
        Suppression.objects.create(
            email="gone@example.com", email_hash="h" * 64, source=SuppressionSource.STAFF, reason="asked"
        )
        make_cart(5, remote_updated_at=timezone.now())  # changed a moment ago: not abandoned yet
        response = support_client.get("/carts/")
        html = response.content.decode()
        assert "unchanged for 45 minutes" in html
        assert "“completed”" in html
        counts = response.context["counts"]
        assert counts["all"] == 4
        assert (counts["new"], counts["not_emailable"], counts["emailed"]) == (1, 1, 1)
        assert counts["unsubscribed"] == 1
        assert 'data-state="not_emailable">Not emailable <span class="count" data-count="1">' in html

    def test_a_not_emailable_row_says_why(self, support_client: Client) -> None:
        make_cart(1, cart_url="")
        make_cart(2, customer_email="")
        html = support_client.get("/carts/", {"state": "not_emailable"}).content.decode()
        assert "No recovery link" in html
        assert "No email address" in html

    def test_without_marketing_consent_the_row_says_so(self, support_client: Client, settings: Any) -> None:
        settings.CARTS_CONSENT_POLICY = "marketing"
        settings.CARTS_CONSENT_PROPERTY = "hs_marketable_status"
        Contact.objects.create(
            hubspot_id="601", email="kim1@example.com", properties={"hs_marketable_status": "false"}
        )
        Contact.objects.create(
            hubspot_id="602", email="kim2@example.com", properties={"hs_marketable_status": "true"}
        )
        make_cart(1, contact_hubspot_id="601")
        make_cart(2, contact_hubspot_id="602")
        response = support_client.get("/carts/")
        states = {
            row.hubspot_id: (row.recovery_state, getattr(row, "why", "")) for row in response.context["rows"]
        }
        assert states == {"90001": ("not_emailable", "No marketing consent"), "90002": ("new", "")}
        assert "No marketing consent" in response.content.decode()

    def test_hostile_text_is_escaped_isolated_and_never_a_link(self, support_client: Client) -> None:
        make_cart(
            1, name=HOSTILE_NAME, customer_name="<img src=x onerror=alert(1)>", cart_url="javascript:alert(1)"
        )
        make_cart(2, store="<b>Store</b>")
        html = support_client.get("/carts/").content.decode()
        assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
        assert "<img src=x" not in html
        assert "\u202e" not in html  # override characters are left out of shown HubSpot text
        assert "<bdi>&lt;script&gt;" in html
        assert 'href="javascript' not in html
        assert "&lt;b&gt;Store&lt;/b&gt;" in html

    def test_the_recovery_link_is_a_real_link_with_copy(self, support_client: Client) -> None:
        make_cart(1)
        html = support_client.get("/carts/").content.decode()
        assert (
            '<a href="https://shop.example/cart/1" target="_blank" rel="noopener noreferrer"'
            ' class="cart-link">' in html
        )
        assert 'data-copy="https://shop.example/cart/1"' in html
        assert "onclick" not in html and "<script>" not in html.split("</head>")[1]

    def test_htmx_request_gets_only_the_list(self, support_client: Client) -> None:
        make_cart(1)
        response = htmx(support_client, "/carts/", "cart-list", q="kim1@")
        html = response.content.decode()
        assert html.lstrip().startswith('<div id="cart-list"')
        assert "<html" not in html and "Cart 1" in html

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"state": "emailed"}, {"3"}),
            ({"min_total": "12", "max_total": "13"}, {"2", "3"}),
            ({"store": "South"}, {"4"}),
            ({"currency": "USD"}, {"1"}),
            ({"q": "kim2@example"}, {"2"}),
            ({"q": "KIM2@example.com"}, {"2"}),  # a whole address: through its index, any case
            ({"q": "Kim 4"}, {"4"}),
            ({"q": "90003"}, {"3"}),
            ({"age": "week"}, {"2"}),
        ],
    )
    def test_filters_and_search(
        self, support_client: Client, params: dict[str, str], expected: set[str]
    ) -> None:
        make_cart(1, currency="USD")
        make_cart(2, remote_updated_at=timezone.now() - timedelta(days=3))
        make_cart(3, email_state=EmailState.EMAILED, last_email_at=timezone.now())
        make_cart(4, store="South")
        rows = support_client.get("/carts/", params).context["rows"]
        assert {row.hubspot_id[-1] for row in rows} == expected

    def test_sort_by_value_age_and_last_email(self, support_client: Client) -> None:
        make_cart(1, total=Decimal("5"))
        make_cart(2, total=Decimal("50"), last_email_at=timezone.now() - timedelta(hours=2))
        make_cart(3, total=Decimal("20"), last_email_at=timezone.now() - timedelta(hours=1))

        def order(sort: str) -> list[str]:
            return [c.hubspot_id[-1] for c in support_client.get("/carts/", {"sort": sort}).context["rows"]]

        assert order("value_high") == ["2", "3", "1"]
        assert order("value_low") == ["1", "3", "2"]
        assert order("newest") == ["1", "2", "3"]
        assert order("oldest") == ["3", "2", "1"]
        assert order("last_email") == ["3", "2", "1"]

    def test_a_bad_filter_shows_its_error_over_no_carts(self, support_client: Client) -> None:
        make_cart(1)
        response = support_client.get("/carts/", {"min_total": "50", "max_total": "5"})
        assert response.context["rows"] == []
        html = response.content.decode()
        assert "These filters could not be read" in html and "must not be below" in html
        # …and "all matching" names none of them.
        assert "Email all 0 matching" in html

    def test_paging_and_a_page_past_the_end_is_the_last(self, support_client: Client) -> None:
        for n in range(55):
            make_cart(n)
        first = support_client.get("/carts/")
        assert len(first.context["rows"]) == 50 and first.context["has_next"]
        last = support_client.get("/carts/", {"page": "999"})
        assert last.context["page"] == 2 and len(last.context["rows"]) == 5
        assert "Page 2 of 2" in last.content.decode()

    def test_a_recovered_cart_stays_listed_and_an_order_without_email_does_not(
        self, support_client: Client
    ) -> None:
        make_cart(1, order_hubspot_id="77", email_state=EmailState.EMAILED)
        make_cart(2, order_hubspot_id="78")
        rows = support_client.get("/carts/").context["rows"]
        assert [(r.hubspot_id, r.recovery_state) for r in rows] == [("90001", "recovered")]


# --- permissions --------------------------------------------------------------------------------------------


class TestPermissions:
    def test_anonymous_is_sent_to_sign_in(self, client: Client) -> None:
        for url in ("/carts/", "/carts/suppressions/", "/carts/templates/", "/carts/mailbox/"):
            assert client.get(url).status_code == 302

    def test_a_user_outside_support_is_refused(self, client: Client) -> None:
        client.force_login(factories.UserFactory())
        assert client.get("/carts/").status_code == 403
        assert client.post("/carts/bulk/", {"scope": "all"}).status_code == 403

    def test_support_works_the_list_but_not_the_templates(self, support_client: Client) -> None:
        html = support_client.get("/carts/").content.decode()
        assert "/carts/templates/" not in html
        assert support_client.get("/carts/templates/").status_code == 403
        template = RecoveryTemplate.objects.first()
        assert template is not None
        assert support_client.get(f"/carts/templates/{template.pk}/").status_code == 403
        assert support_client.post("/carts/templates/preview/", {"name": "x"}).status_code == 403

    def test_a_pipeline_admin_sees_and_opens_the_templates(self, admin_client: Client) -> None:
        assert "/carts/templates/" in admin_client.get("/carts/").content.decode()
        assert admin_client.get("/carts/templates/").status_code == 200

    def test_posts_need_the_csrf_token(self, support_user: Any) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(support_user)
        cart = make_cart(1)
        assert client.post(f"/carts/{cart.hubspot_id}/send/").status_code == 403
        assert not RecoverySend.objects.exists()


# --- one cart -----------------------------------------------------------------------------------------------


def with_items(cart: Cart) -> None:
    contact = Contact.objects.create(
        hubspot_id="501", email="kim1@example.com", first_name="Kim", last_name="Lee"
    )
    cart.contact_hubspot_id = contact.hubspot_id
    cart.save(update_fields=["contact_hubspot_id"])
    for n, (name, price) in enumerate((("Blue mug", "12.50"), ("<i>Teapot</i>", "30.00"))):
        LineItem.objects.create(
            hubspot_id=f"70{n}",
            name=name,
            quantity=Decimal(2),
            price=Decimal(price),
            amount=Decimal(price) * 2,
        )
        Association.objects.create(
            from_type="carts", from_id=cart.hubspot_id, to_type="line_items", to_id=f"70{n}", type_id=1
        )


class TestCart:
    def test_the_drawer_shows_items_contact_sync_state_and_log(self, support_client: Client) -> None:
        cart = make_cart(1)
        with_items(cart)
        send = RecoverySend.objects.create(
            cart=cart, step=1, to_email="kim1@example.com", status=SendStatus.UNCERTAIN, token="t1"
        )
        CartEvent.objects.create(cart=cart, kind=EventKind.SKIPPED, message="Already ordered in HubSpot")
        CartEvent.objects.create(cart=cart, kind=EventKind.UNCERTAIN, send=send, message="Worker stopped")
        response = htmx(support_client, f"/carts/{cart.hubspot_id}/", "cart-drawer-body")
        html = response.content.decode()
        assert "<html" not in html
        assert (
            "Blue mug" in html and "&lt;i&gt;Teapot&lt;/i&gt;" in html and "25.00" in html and "60.00" in html
        )
        assert "Kim Lee" in html
        assert "Already ordered in HubSpot" in html and "Skipped" in html
        assert "May or may not have been delivered" in html and "not re-sent automatically" in html
        assert 'class="sync-state' in html or "sync-state" in html

    def test_the_cart_page_is_a_whole_page(self, support_client: Client) -> None:
        cart = make_cart(1)
        html = support_client.get(f"/carts/{cart.hubspot_id}/").content.decode()
        assert "<html" in html and "Send recovery email" in html

    def test_an_unknown_or_unreadable_cart_is_404(self, support_client: Client) -> None:
        assert support_client.get("/carts/123/").status_code == 404
        assert support_client.get("/carts/99999999999999999999999/").status_code == 404
        assert support_client.get("/carts/abc/").status_code == 404

    def test_preview_uses_the_carts_data_and_its_html_is_sandboxed(self, support_client: Client) -> None:
        cart = make_cart(1, customer_name="Kim Lee")
        with_items(cart)
        html = htmx(support_client, f"/carts/{cart.hubspot_id}/preview/", "cart-preview").content.decode()
        assert "data-preview-subject" in html
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in html
        part = support_client.get(f"/carts/{cart.hubspot_id}/preview/html/")
        assert part.status_code == 200
        csp = part["Content-Security-Policy"]
        assert csp.startswith("sandbox") and "default-src 'none'" in csp and "script-src" not in csp
        assert part["X-Frame-Options"] == "SAMEORIGIN"
        assert "Blue mug" in part.content.decode()

    def test_send_queues_one_and_redraws_the_activity(
        self, support_client: Client, support_user: Any
    ) -> None:
        cart = make_cart(1)
        response = support_client.post(
            f"/carts/{cart.hubspot_id}/send/", headers={"HX-Request": "true", "HX-Target": "cart-activity"}
        )
        html = response.content.decode()
        send = RecoverySend.objects.get(cart=cart)
        assert send.requested_by == support_user
        assert send.status in (SendStatus.QUEUED, SendStatus.SENDING, SendStatus.SENT)
        assert html.lstrip().startswith('<section id="cart-activity"')
        assert "cartChanged" in response["HX-Trigger"]
        # While it is under way the region asks for itself again.
        if send.status == SendStatus.QUEUED:
            assert 'hx-trigger="every 2s"' in html

    def test_send_without_htmx_redirects_to_the_cart(self, support_client: Client) -> None:
        cart = make_cart(1)
        response = support_client.post(f"/carts/{cart.hubspot_id}/send/")
        assert response.status_code == 302 and response["Location"] == f"/carts/{cart.hubspot_id}/"

    def test_a_cart_that_cannot_be_emailed_is_skipped_with_the_reason(self, support_client: Client) -> None:
        cart = make_cart(1, cart_url="")
        html = support_client.post(
            f"/carts/{cart.hubspot_id}/send/", headers={"HX-Request": "true", "HX-Target": "cart-activity"}
        ).content.decode()
        assert "Not sent: No recovery link" in html
        assert not RecoverySend.objects.filter(cart=cart).exclude(status=SendStatus.SKIPPED).exists()


# --- bulk ---------------------------------------------------------------------------------------------------


class TestBulk:
    def test_all_matching_states_scope_and_skips_before_sending(self, support_client: Client) -> None:
        for n in range(4):
            make_cart(n, store="North")
        make_cart(8, store="North", cart_url="")
        make_cart(9, store="South")
        response = support_client.post("/carts/bulk/", {"scope": "all", "filters": "store=North"})
        html = response.content.decode()
        assert 'data-scope-count="5"' in html
        assert 'data-send-count="4"' in html and 'data-skip-count="1"' in html
        assert "No recovery link" in html
        assert not BulkSend.objects.exists() and not RecoverySend.objects.exists()
        done = support_client.post(
            "/carts/bulk/",
            {"scope": "all", "filters": "store=North", "confirm": "on"},
            headers={"HX-Request": "true"},
        )
        bulk = BulkSend.objects.get()
        assert (bulk.total, bulk.queued, bulk.skipped) == (5, 4, 1)
        assert f'data-queued="{bulk.queued}"' in done.content.decode()
        assert "cartsChanged" in done["HX-Trigger"]
        assert not RecoverySend.objects.filter(cart__store="South").exists()

    def test_ticked_carts_only(self, support_client: Client) -> None:
        carts = [make_cart(n) for n in range(3)]
        html = support_client.post(
            "/carts/bulk/", {"scope": "selected", "selected": [carts[0].hubspot_id, carts[2].hubspot_id]}
        ).content.decode()
        assert 'data-scope-count="2"' in html

    def test_nothing_ticked_or_unreadable_ids_send_nothing(self, support_client: Client) -> None:
        make_cart(1)
        for data in (
            {"scope": "selected"},
            {"scope": "selected", "selected": "<x>"},
            {"scope": "everything"},
        ):
            response = support_client.post("/carts/bulk/", data)
            assert response.status_code == 200 and "Nothing was sent" in response.content.decode()
        assert not RecoverySend.objects.exists()


# --- templates ----------------------------------------------------------------------------------------------


class TestTemplates:
    def form(self, **values: str) -> dict[str, str]:
        data = {
            "name": "Reminder",
            "subject": "Hi {{ first_name }}",
            "html_body": "<p>Hello {{ first_name }}, <a href='{{ recovery_link }}'>back to your cart</a></p>",
            "text_body": "Hello {{ first_name }}: {{ recovery_link }}",
        }
        data.update(values)
        return data

    def test_the_editor_lists_the_merge_fields(self, admin_client: Client) -> None:
        template = RecoveryTemplate.objects.get(is_default=True)
        html = admin_client.get(f"/carts/templates/{template.pk}/").content.decode()
        for field in (
            "first_name",
            "recovery_link",
            "unsubscribe_link",
            "item.price",
            "item.image_url",
            "total",
        ):
            assert field in html
        assert 'hx-trigger="input delay:600ms' in html

    def test_live_preview_against_a_chosen_cart(self, admin_client: Client) -> None:
        cart = make_cart(1, customer_name="Kim Lee")
        Contact.objects.create(hubspot_id="9", email="kim1@example.com", first_name="Kim")
        cart.contact_hubspot_id = "9"
        cart.save()
        response = admin_client.post(
            "/carts/templates/preview/",
            self.form(preview_cart=cart.hubspot_id),
            headers={"HX-Request": "true", "HX-Target": "template-preview"},
        )
        html = response.content.decode()
        assert html.lstrip().startswith('<section id="template-preview"')
        assert "Hi Kim" in html
        token = re.search(r"/carts/templates/preview/([A-Za-z0-9_-]+)/", html)
        assert token
        frame = admin_client.get(token.group(0))
        assert frame["Content-Security-Policy"].startswith("sandbox")
        assert "back to your cart" in frame.content.decode()

    def test_a_bad_template_shows_the_error_in_the_page_and_is_not_saved(self, admin_client: Client) -> None:
        template = RecoveryTemplate.objects.get(is_default=True)
        before = template.subject
        bad = self.form(subject="{% if %}")
        preview = admin_client.post("/carts/templates/preview/", bad).content.decode()
        assert "cannot be rendered" in preview
        response = admin_client.post(f"/carts/templates/{template.pk}/", bad)
        assert response.status_code == 200 and "cannot be rendered" in response.content.decode()
        template.refresh_from_db()
        assert template.subject == before

    def test_save_records_who(self, admin_client: Client) -> None:
        template = RecoveryTemplate.objects.get(is_default=True)
        response = admin_client.post(
            f"/carts/templates/{template.pk}/", self.form(subject="Your cart, {{ first_name }}")
        )
        assert response.status_code == 302
        template.refresh_from_db()
        assert template.subject == "Your cart, {{ first_name }}" and template.updated_by is not None

    def test_a_test_send_goes_to_the_admin_and_a_refusal_is_said(
        self,
        client: Client,
        settings: Any,
        tmp_path: Path,
        queued_tasks: list[tuple[str, Any]],
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        from carts import tasks
        from carts.mailbox import MailServer

        def worker() -> str:
            """The queued test send, run as the worker runs it (the request itself sends nothing)."""
            name, args = queued_tasks.pop()
            assert name == tasks.template_test_send_task.name
            return str(tasks.template_test_send_task(*args))

        admin = factories.pipeline_admin(email="admin@shop.example")
        client.force_login(admin)
        template = RecoveryTemplate.objects.get(is_default=True)
        server = MailServer(tmp_path / "mail", port=0)
        server.start()
        try:
            settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
            settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", server.port, False
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(f"/carts/templates/{template.pk}/test/", follow=True)
            assert "was sent to admin@shop.example; it arrives in a moment" in response.content.decode()
            assert Mailbox(tmp_path / "mail").list() == []
            assert worker() == "sent"
            received = Mailbox(tmp_path / "mail").list()
            assert [m.to for m in received] == [["admin@shop.example"]]
            assert received[0].subject.startswith("[Test] ")
        finally:
            server.stop()
        # No mail server listening: the template's page says so when it is next loaded (once).
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/carts/templates/{template.pk}/test/", follow=True)
        assert response.status_code == 200 and "could not be sent" not in response.content.decode()
        assert worker() == "failed"
        page = client.get(f"/carts/templates/{template.pk}/").content.decode()
        assert "The test to admin@shop.example could not be sent" in page
        assert "could not be sent" not in client.get(f"/carts/templates/{template.pk}/").content.decode()

    def test_a_subject_on_two_lines_is_refused(self, admin_client: Client) -> None:
        template = RecoveryTemplate.objects.get(is_default=True)
        response = admin_client.post(f"/carts/templates/{template.pk}/", self.form(subject="a\r\nBcc: x@y.z"))
        assert "The subject must be one line." in response.content.decode()


# --- suppressions -------------------------------------------------------------------------------------------


class TestSuppressions:
    def test_add_search_and_remove_with_who_and_why(self, support_client: Client) -> None:
        cart = make_cart(1, customer_email="Kim1@Example.com")
        response = support_client.post(
            "/carts/suppressions/", {"email": "KIM1@example.com", "reason": "Asked by phone"}
        )
        assert response.status_code == 302
        suppression = Suppression.objects.get()
        assert suppression.email == "kim1@example.com" and suppression.added_by is not None
        assert Cart.objects.with_recovery_state().get(pk=cart.pk).recovery_state == "unsubscribed"
        list_html = support_client.get("/carts/", {"state": "unsubscribed"}).content.decode()
        assert "Cart 1" in list_html
        html = support_client.get("/carts/suppressions/", {"q": "kim1"}).content.decode()
        assert "Asked by phone" in html
        assert (
            "kim1@example.com"
            not in support_client.get("/carts/suppressions/", {"q": "nobody"}).content.decode()
        )
        # Removing needs a reason.
        support_client.post("/carts/suppressions/remove/", {"suppression": suppression.pk, "reason": ""})
        assert Suppression.objects.exists()
        support_client.post(
            "/carts/suppressions/remove/", {"suppression": suppression.pk, "reason": "Opted in again"}
        )
        assert not Suppression.objects.exists()
        assert CartEvent.objects.filter(cart=cart, message__contains="Opted in again").exists()

    def test_a_bad_address_is_shown_as_an_error(self, support_client: Client) -> None:
        html = support_client.post(
            "/carts/suppressions/", {"email": "not an address", "reason": "x"}
        ).content.decode()
        assert "Enter a valid email address." in html
        assert not Suppression.objects.exists()


# --- the Mailbox --------------------------------------------------------------------------------------------


def store_message(folder: Path, message_id: str, html: str) -> None:
    message = EmailMessage()
    message["Subject"] = "Your cart <is waiting>"
    message["X-Mailbox-From"] = "shop@example.com"
    message["X-Mailbox-To"] = "kim@example.com"
    message["X-Mailbox-Received"] = timezone.now().isoformat()
    message.set_content("Come back: https://shop.example/r/c/abc/")
    message.add_alternative(html, subtype="html")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{message_id}.eml").write_bytes(message.as_bytes())


class TestMailbox:
    def test_list_html_and_text_views(self, support_client: Client, settings: Any, tmp_path: Path) -> None:
        settings.MAILBOX_DIR = tmp_path
        store_message(
            tmp_path,
            "20261206-0001",
            "<html><head></head><body><script>alert(1)</script>"
            "<a href='https://shop.example/r/c/abc/'>Back to cart</a></body></html>",
        )
        html = support_client.get("/carts/mailbox/").content.decode()
        assert "Your cart &lt;is waiting&gt;" in html and "kim@example.com" in html
        assert ">Mailbox</a>" in html  # in the navigation
        page = support_client.get("/carts/mailbox/20261206-0001/").content.decode()
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
        assert '<a href="https://shop.example/r/c/abc/" target="_blank" rel="noopener noreferrer">' in page
        part = support_client.get("/carts/mailbox/20261206-0001/html/")
        assert (
            part["Content-Security-Policy"].startswith("sandbox")
            and "default-src 'none'" in part["Content-Security-Policy"]
        )
        assert '<base target="_blank">' in part.content.decode()
        text = support_client.get("/carts/mailbox/20261206-0001/", {"view": "text"}).content.decode()
        assert "Come back: https://shop.example/r/c/abc/" in text

    def test_no_mailbox_in_production(self, support_client: Client, settings: Any, tmp_path: Path) -> None:
        settings.MAILBOX_DIR = tmp_path
        settings.PRODUCTION = True
        assert support_client.get("/carts/mailbox/").status_code == 404
        assert ">Mailbox</a>" not in support_client.get("/carts/").content.decode()

    def test_an_unknown_or_hostile_message_id_is_404(
        self, support_client: Client, settings: Any, tmp_path: Path
    ) -> None:
        settings.MAILBOX_DIR = tmp_path
        assert support_client.get("/carts/mailbox/nope/").status_code == 404
        assert support_client.get("/carts/mailbox/..%2Fsecret/").status_code == 404
