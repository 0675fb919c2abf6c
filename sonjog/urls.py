from django.contrib import admin
from django.urls import include, path

from sonjog.portal import pay_urls

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("hooks/notifications/", include("sonjog.notifications.urls")),
    path("hooks/gateways/", include(pay_urls.hook_urlpatterns)),
    path("pay/", include(pay_urls.urlpatterns)),
    path("suspended/", include(pay_urls.suspended_urlpatterns)),
    path("my/", include("sonjog.portal.urls")),
    path("", include("sonjog.console.urls")),
]

# The console's frame (menu, sign-out) for a signed-in login; see sonjog.console.views.errors.
handler403 = "sonjog.console.views.errors.permission_denied_view"
handler404 = "sonjog.console.views.errors.page_not_found_view"
handler500 = "sonjog.console.views.errors.server_error_view"
