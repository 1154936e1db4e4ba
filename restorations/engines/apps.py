from django.apps import AppConfig


class EnginesConfig(AppConfig):
    name = "restorations.engines"
    label = "engines"
    verbose_name = "Restoration engines"
