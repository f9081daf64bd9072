from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path, register_converter

from carts import public as carts_public
from config.converters import IdConverter
from hubspot import views as hubspot_views

# <id:…> in every app's URLs: an id too large for the database is no URL at all (404), never a query error.
register_converter(IdConverter, "id")

urlpatterns = [
    path("", hubspot_views.home, name="home"),
    path(
        "login/",
        login_not_required(auth_views.LoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", hubspot_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("boards/", include("orders.urls")),
    path("carts/", include("carts.urls")),
    # The links in recovery emails: public (customers are not signed in), signed, see carts.public.
    path("r/c/<str:token>/", carts_public.recovery_click, name="recovery-click"),
    path("r/u/<str:token>/", carts_public.recovery_unsubscribe, name="recovery-unsubscribe"),
    path("pipelines/", include("pipelines.urls")),
    path("sync/", include("hubspot.urls")),
    path("hubspot/webhooks/", hubspot_views.webhook, name="hubspot-webhook"),
]
