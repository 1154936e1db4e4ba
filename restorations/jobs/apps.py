from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "restorations.jobs"
    label = "jobs"
    verbose_name = "Restoration jobs"
