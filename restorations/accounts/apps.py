from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "restorations.accounts"
    label = "accounts"
    verbose_name = "Accounts and teams"

    def ready(self):
        from restorations.accounts import signals  # noqa: F401
