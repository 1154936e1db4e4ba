from django import forms
from django.contrib.auth.forms import UserCreationForm

from restorations.accounts.models import User

EMAIL_HELP = "Used only to send you a link when you forget your password."


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")
        help_texts = {"email": EMAIL_HELP}


class ProfileForm(forms.ModelForm):
    """What a user may change about themselves here; the password has its own page."""

    class Meta:
        model = User
        fields = ("email",)
        help_texts = {"email": EMAIL_HELP + " Without one, a forgotten password cannot be reset."}
