from django.contrib.auth.forms import UserCreationForm

from restorations.accounts.models import User


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")
