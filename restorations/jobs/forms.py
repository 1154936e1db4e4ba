import uuid

from django import forms
from django.core.exceptions import ValidationError

from restorations.jobs.operations import SPECS, Operation, clean_options, spec_for
from restorations.jobs.validation import allowed_formats, check_image, clean_file_name

# One form post carries every photo: its size bounds what a page without its script can send.
MAX_FILES_PER_UPLOAD = 50
# The page's script sends photos one per request; one upload (one batch) holds at most this many.
MAX_PHOTOS_PER_BATCH = 500


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        files = [f for f in files if f]
        if not files:
            raise ValidationError("Choose at least one photo.", code="required")
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise ValidationError(
                f"Upload at most {MAX_FILES_PER_UPLOAD} photos at a time.", code="too_many"
            )
        # Each file is checked on its own (UploadForm.clean), so one bad file, even an empty
        # one, refuses only itself.
        return files


def option_field_name(operation: str, option: str) -> str:
    return f"{operation}__{option}"


class OperationForm(forms.Form):
    """An operation and its options (one group of fields per operation) for an upload, whose
    token names its batch."""

    operation = forms.ChoiceField(
        label="Restoration",
        choices=Operation.choices,
        initial=Operation.OLD_PHOTO,
        help_text="Every photo of this upload gets this restoration.",
    )
    upload = forms.UUIDField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for spec in SPECS.values():
            for option in spec.options:
                self.fields[option_field_name(spec.operation, option.name)] = forms.ChoiceField(
                    label=option.label,
                    choices=option.choices,
                    initial=option.default,
                    required=False,
                    help_text=option.help,
                )

    def option_groups(self):
        """[(spec, [bound fields], "JPG, PNG")] for the template."""
        return [
            (
                spec,
                [self[option_field_name(spec.operation, o.name)] for o in spec.options],
                allowed_formats(spec),
            )
            for spec in SPECS.values()
        ]

    def clean(self):
        cleaned = super().clean()
        operation = cleaned.get("operation")
        if not operation:
            return cleaned
        spec = spec_for(operation)
        raw = {}
        for option in spec.options:
            value = self.data.get(option_field_name(operation, option.name))
            if value is not None and not (option.requires and value == option.default):
                raw[option.name] = value
        try:
            cleaned["options"] = clean_options(operation, raw)
        except ValidationError as error:
            self.add_error("operation", error)
        return cleaned


class UploadForm(OperationForm):
    """The page as it works without its script: every photo in one post. Good photos are
    kept in `checked` as (file, CheckedImage); each bad one is a line in `refused` ("name:
    reason"). Only when no photo is good is the form invalid."""

    photos = MultipleFileField(
        label="Photos",
        widget=MultipleFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,image/bmp,image/tiff"}
        ),
    )
    field_order = ["photos", "operation"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["upload"] = uuid.uuid4()

    def clean(self):
        cleaned = super().clean()
        cleaned["checked"], cleaned["refused"] = [], []
        if not cleaned.get("upload"):
            cleaned["upload"] = uuid.uuid4()  # a page from before upload tokens
        operation = cleaned.get("operation")
        if not operation:
            return cleaned
        spec = spec_for(operation)
        for photo in cleaned.get("photos") or []:
            try:
                cleaned["checked"].append((photo, check_image(photo, spec)))
            except ValidationError as error:
                cleaned["refused"].append(f"{clean_file_name(photo.name)}: {error.messages[0]}")
        if cleaned["refused"] and not cleaned["checked"]:
            self.add_error("photos", [ValidationError(line) for line in cleaned["refused"]])
        return cleaned


class PhotoForm(OperationForm):
    """One photo of an upload, as the page's script sends it. The photo itself is checked when
    it is stored (services.create_task)."""

    photo = forms.FileField(
        error_messages={"required": "Choose a photo.", "empty": "The file is empty."}
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["upload"].required = True
        self.fields["upload"].error_messages["required"] = (
            "This photo names no upload. Reload the page and try again."
        )

    def first_error(self) -> str:
        """The one reason the page shows; an option's own is said with its name by
        clean_options, in the operation's errors."""
        for name in ("operation", "upload", "photo", *self.errors):
            if name in self.errors:
                return self.errors[name][0]
        return ""
