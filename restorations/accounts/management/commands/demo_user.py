import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from restorations.accounts.models import User

USERNAME = "demo"


class Command(BaseCommand):
    help = "Create the demo login for the embedded setup (once) and print it."

    def handle(self, *args, **options):
        login_file = settings.VAR_DIR / "demo-login.txt"
        user = User.objects.filter(username=USERNAME).first()
        if user is None or not login_file.exists():
            password = secrets.token_urlsafe(9)
            if user is None:
                user = User(
                    username=USERNAME, email="demo@example.com", is_staff=True, is_superuser=True
                )
            user.set_password(password)
            user.save()
            login_file.parent.mkdir(parents=True, exist_ok=True)
            login_file.write_text(password)
        password = login_file.read_text().strip()
        self.stdout.write(self.style.SUCCESS(f"Demo login: {USERNAME} / {password}"))
