from django.urls import path

from sonjog.notifications import views

app_name = "notifications"
urlpatterns = [
    path("<slug:provider>/<int:account_id>/", views.delivery_report, name="delivery_report"),
]
