from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path, register_converter
from django.views.decorators.http import require_GET

from carts import public as carts_public
from config import lookups
from config import views as project_views
from config.converters import IdConverter, KeyConverter
from config.login_throttle import ThrottledAdminLoginForm, ThrottledLoginForm
from hubspot_sync import views as hubspot_views

# <id:…> in every app's URLs: an id too large for the database is no URL at all (404), never a query error.
register_converter(IdConverter, "id")
# <key:…> for HubSpot ids and property names: no NUL bytes or control characters reach a query.
register_converter(KeyConverter, "key")
# Nor is one sent in a form field that lists ids (``__in``): it matches nothing.
lookups.register()

# The admin's sign-in page counts failed sign-ins like /login/ does.
admin.site.login_form = ThrottledAdminLoginForm


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever a page links: send them to the static icon (its hashed name
    in production, so not a permanent redirect)."""
    return HttpResponseRedirect(static("favicon.svg"))


urlpatterns = [
    path("", project_views.home, name="home"),
    path(
        "login/",
        login_not_required(
            auth_views.LoginView.as_view(
                authentication_form=ThrottledLoginForm, redirect_authenticated_user=True
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", project_views.healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("boards/", include("orders.urls")),
    path("carts/", include("carts.urls")),
    # The links in recovery emails: public (customers are not signed in), signed, see carts.public.
    path("r/c/<str:token>/", carts_public.recovery_click, name="recovery-click"),
    path("r/u/<str:token>/", carts_public.recovery_unsubscribe, name="recovery-unsubscribe"),
    path("pipelines/", include("pipelines.urls")),
    path("sync/", include("hubspot_sync.urls")),
    path("hubspot/webhooks/", hubspot_views.webhook, name="hubspot-webhook"),
]
