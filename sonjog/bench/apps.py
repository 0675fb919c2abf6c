from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "sonjog.bench"
    label = "bench"
    verbose_name = "Benchmarks"
