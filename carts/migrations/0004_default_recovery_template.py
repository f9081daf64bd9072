"""Carts: the default recovery email (step 1), which Pipeline admins can edit on the Templates page.

The HTML is a single 600 px table with inline styles (mail clients ignore <style> blocks and external
CSS); merge fields are those of carts.rendering, escaped by the template engine."""

from typing import Any

from django.db import migrations

SUBJECT = "{{ first_name|default:'Hi' }}, your cart at {{ store|default:'our store' }} is waiting"

TEXT = """Hi {{ first_name|default:"there" }},

You left some things in your cart at {{ store|default:"our store" }}:
{% for item in items %}
- {{ item.name }} x {{ item.quantity }}: {{ item.price }} {{ currency }}{% endfor %}

Total: {{ total }} {{ currency }}

Pick up where you left off:
{{ recovery_link }}

--
You get this email because you started a checkout at {{ store|default:"our store" }}.
Unsubscribe: {{ unsubscribe_link }}
"""

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your cart is waiting</title>
</head>
<body style="margin:0;padding:0;background:#f3f4f6;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f3f4f6;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0"
 style="width:100%;max-width:600px;background:#ffffff;border-radius:8px;font-family:Arial,Helvetica,sans-serif;color:#1f2937;">
<tr><td style="padding:28px 32px 8px 32px;font-size:14px;color:#6b7280;">{{ store|default:"Our store" }}</td></tr>
<tr><td style="padding:0 32px;">
<h1 style="margin:0 0 12px 0;font-size:22px;line-height:1.3;color:#111827;">Hi {{ first_name|default:"there" }}, you left something behind</h1>
<p style="margin:0 0 20px 0;font-size:15px;line-height:1.5;">Your cart is saved. Here is what is in it:</p>
</td></tr>
<tr><td style="padding:0 32px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-top:1px solid #e5e7eb;">
{% for item in items %}<tr>
<td width="64" style="padding:12px 12px 12px 0;border-bottom:1px solid #e5e7eb;">{% if item.image_url %}<img src="{{ item.image_url }}" width="56" height="56" alt="" style="display:block;border-radius:4px;">{% endif %}</td>
<td style="padding:12px 0;border-bottom:1px solid #e5e7eb;font-size:15px;line-height:1.4;">{{ item.name }}<br><span style="color:#6b7280;font-size:13px;">Quantity {{ item.quantity }}</span></td>
<td align="right" style="padding:12px 0;border-bottom:1px solid #e5e7eb;font-size:15px;white-space:nowrap;">{{ item.price }} {{ currency }}</td>
</tr>{% endfor %}
<tr><td></td><td style="padding:14px 0;font-size:15px;font-weight:bold;">Total</td>
<td align="right" style="padding:14px 0;font-size:15px;font-weight:bold;white-space:nowrap;">{{ total }} {{ currency }}</td></tr>
</table>
</td></tr>
<tr><td align="center" style="padding:16px 32px 28px 32px;">
<a href="{{ recovery_link }}" style="display:inline-block;background:#1d4ed8;color:#ffffff;text-decoration:none;font-size:16px;font-weight:bold;padding:14px 28px;border-radius:6px;">Return to your cart</a>
</td></tr>
<tr><td style="padding:16px 32px 28px 32px;border-top:1px solid #e5e7eb;font-size:12px;line-height:1.5;color:#6b7280;">
You get this email because you started a checkout at {{ store|default:"our store" }}.
<a href="{{ unsubscribe_link }}" style="color:#6b7280;">Unsubscribe</a> from these reminders.
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""


def create_default(apps: Any, schema_editor: Any) -> None:
    template = apps.get_model("carts", "RecoveryTemplate")
    if not template.objects.filter(is_default=True).exists():
        template.objects.create(
            name="Default reminder",
            step=1,
            active=True,
            is_default=True,
            subject=SUBJECT,
            html_body=HTML,
            text_body=TEXT,
        )


def remove_default(apps: Any, schema_editor: Any) -> None:
    apps.get_model("carts", "RecoveryTemplate").objects.filter(
        is_default=True, name="Default reminder", updated_by=None
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("carts", "0003_recovery_emails")]

    operations = [migrations.RunPython(create_default, remove_default)]
