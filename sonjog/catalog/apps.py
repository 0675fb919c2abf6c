from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "sonjog.catalog"
    label = "catalog"
    verbose_name = "Packages"
