from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "sonjog.notifications"
    label = "notifications"
    verbose_name = "Notifications"
