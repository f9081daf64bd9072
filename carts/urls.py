from django.urls import path

from carts import recovery_views, sequence_views, views

app_name = "carts"
urlpatterns = [
    path("", views.abandoned_carts, name="abandoned"),
    path("bulk/", views.bulk_send, name="bulk"),
    path("templates/", views.templates_list, name="templates"),
    path("templates/new/", views.template_edit, name="template-new"),
    path("templates/preview/", views.template_preview, name="template-preview"),
    path("templates/preview/<str:token>/", views.template_preview_html, name="template-preview-html"),
    path("templates/<id:template_pk>/", views.template_edit, name="template"),
    path("templates/<id:template_pk>/test/", views.template_test, name="template-test"),
    path("sequence/", sequence_views.sequence_settings_page, name="sequence"),
    path("suppressions/", views.suppressions, name="suppressions"),
    path("suppressions/remove/", views.suppression_delete, name="suppression-remove"),
    path("mailbox/", views.mailbox, name="mailbox"),
    path("mailbox/<str:message_id>/", views.mailbox_message, name="mailbox-message"),
    path("mailbox/<str:message_id>/html/", views.mailbox_html, name="mailbox-html"),
    path("recovery/", recovery_views.recovery_dashboard, name="recovery"),
    path("recovery/export.csv", recovery_views.recovery_export, name="recovery-export"),
    path("privacy/", recovery_views.privacy_request, name="privacy"),
    path("<str:cart_id>/", views.cart_detail, name="cart"),
    path("<str:cart_id>/preview/", views.cart_preview, name="preview"),
    path("<str:cart_id>/preview/html/", views.cart_preview_html, name="preview-html"),
    path("<str:cart_id>/send/", views.cart_send, name="send"),
]
